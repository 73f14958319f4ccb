"""What machine a benchmark ran on: timings are ratios measured in one run, named with the CPU."""

from __future__ import annotations

import os
import platform
import re
import subprocess

FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "fma")


def describe() -> str:
    """e.g. "AMD EPYC (2 cores; avx2 fma; no avx512f/avx512_bf16/amx)"."""
    model, flags = platform.processor() or platform.machine(), set()
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = re.search(r"Model name:\s*(.+)", out).group(1).strip()
        flags = set(re.search(r"Flags:\s*(.+)", out).group(1).split())
    except (OSError, subprocess.CalledProcessError, AttributeError):
        pass
    have = [f for f in FLAGS if f in flags]
    missing = [f for f in FLAGS if f not in flags]
    return (f"{model} ({os.cpu_count()} cores; flags: {' '.join(have) or 'unknown'}"
            f"{'; without ' + ' '.join(missing) if flags and missing else ''})")
