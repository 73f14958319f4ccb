"""The steps' summary lines as the page's headings, lists and tables.

Steps write plain lines for the console: "Heading:", "- item" and ``steps.summary_line`` rows
("- stacked-bs32: accuracy 0.8123, C 0.01"). Read in a browser, a monospaced wall of them hides
the structure, so :func:`summary_blocks` gives it back: a heading per "...:" line, a list per
run of items, and a table where every item of a list has the same "key value" pairs.
"""

from __future__ import annotations

import re

_KEY = re.compile(r"[A-Za-z][\w \-/|()]{0,39}")  # "accuracy", "dead units", "T-shirt/top"
_VALUE = re.compile(r"[-+]?\d[\w.,+\-/%]*|–")  # "0.8123", "12/50", "784-30-10-10", "1e-06"


def _pairs(item: str) -> tuple[str, dict] | None:
    """"name: key 0.1, key 2" -> ("name", {"key": "0.1", ...}), or None for prose."""
    name, sep, rest = item.partition(": ")
    if not sep or " " in name.strip():
        return None
    pairs = {}
    for part in rest.split(", "):
        key, _, value = part.rpartition(" ")
        if not (_KEY.fullmatch(key) and _VALUE.fullmatch(value)) or key in pairs:
            return None
        pairs[key] = value
    return name, pairs


def _list_block(items: list[str]) -> dict:
    """A table when every item is "name: key value, ..." with the same keys (two or more items),
    else a list."""
    parsed = [_pairs(i) for i in items]
    keys = [list(p[1]) for p in parsed if p]
    if len(items) > 1 and len(keys) == len(items) and all(k == keys[0] for k in keys):
        return {"kind": "table", "columns": ["", *keys[0]],
                "rows": [[name, *pairs.values()] for name, pairs in parsed]}
    return {"kind": "list", "items": items}


def summary_blocks(lines: list[str]) -> list[dict]:
    """Blocks for the page, in order: {"kind": "heading", "level", "text"}, {"kind": "list",
    "items"}, {"kind": "table", "columns", "rows"} or {"kind": "text", "text"}. A heading right
    above another heading opens a group (h3) whose headings are h4 from then on."""
    blocks: list[dict] = []
    items: list[str] = []
    level = 3
    for i, line in enumerate(lines):
        if line.startswith("- "):
            items.append(line[2:])
            continue
        if items:
            blocks.append(_list_block(items))
            items = []
        is_heading = line.endswith(":") and len(line) <= 120
        if is_heading:
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            group = nxt.endswith(":") and not nxt.startswith("- ")
            blocks.append({"kind": "heading", "level": 3 if group else level, "text": line[:-1]})
            level = 4 if group else level
        else:
            blocks.append({"kind": "text", "text": line})
    if items:
        blocks.append(_list_block(items))
    return blocks
