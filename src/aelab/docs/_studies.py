"""A study's description in one line, for `aelab list`: what it is, not its measured figures.

The long description (settings, timings with their machine) is for `aelab show` and the report;
a list of studies reads best as one line each.
"""

from __future__ import annotations

import re


def headline(description: str) -> str:
    """The description's first clause (up to its first ": " or sentence end), without
    parenthesised asides: "Stacked vs sparse autoencoder on the three shoe classes of
    Fashion-MNIST (Sandal, ...), each trained ..." -> "Stacked vs sparse autoencoder on the three
    shoe classes of Fashion-MNIST"."""
    text = " ".join(description.split())
    while True:  # innermost asides first, so nested brackets go too
        shorter = re.sub(r"\s*\([^()]*\)", "", text)
        if shorter == text:
            break
        text = shorter
    first = re.split(r":\s|\.\s|\.$|;\s|,\s(?:each|all|then)\s", text, maxsplit=1)[0]
    return first.strip().rstrip(",.") or text
