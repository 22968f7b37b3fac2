"""Where a key or a value stands in a protocol file's text: the line every
error names."""

from __future__ import annotations

import re


def _locate(lines: list[str], start: int, needle: str) -> int:
    """The 1-based line at or after ``start`` holding ``needle``; 0 if none."""
    for i in range(max(start - 1, 0), len(lines)):
        if needle in lines[i]:
            return i + 1
    return 0


def _table_line(lines: list[str], table: str) -> int:
    return _locate(lines, 1, f"[{table}]") if table else 1


def _key_line(lines: list[str], table: str, key: str) -> int:
    start = _table_line(lines, table) if table else 1
    pat = re.compile(rf'^\s*"?{re.escape(key)}"?\s*=')
    for i in range(max(start - 1, 0), len(lines)):
        if pat.match(lines[i]):
            return i + 1
        if table and i + 1 > start and lines[i].lstrip().startswith("[") and not \
                lines[i].lstrip().startswith("[["):
            if re.match(r"^\s*\[[a-z]", lines[i]):
                break
    return start
