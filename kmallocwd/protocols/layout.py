"""Where each field of a format-2 protocol's slot (the generated struct
P_info, kmallocwd/protocols/cgen2.py) lies: the C layout rules for its
members (natural alignment; the two-copy fields as one struct copy[2]),
for what reads or writes a slot from Python (replay's buffer, the tests,
the benchmarks).  The compiler has the last word: ``slot_size`` equals the
module's kmw_slot_size() (a test checks it)."""

from __future__ import annotations

from dataclasses import dataclass

CACHELINE = 64


@dataclass(frozen=True)
class Layout:
    offsets: dict[str, tuple[int, ...]]  # field -> its offset (two: copy[0], copy[1])
    widths: dict[str, int]  # field -> bytes
    section: int  # the emulator's kmw_section (u64)
    slot_size: int


def _align(x: int, a: int) -> int:
    return (x + a - 1) // a * a


def layout(spec) -> Layout:
    """The layout of ``spec``'s struct P_info (format 2)."""
    off = 0
    offsets: dict[str, tuple[int, ...]] = {}
    widths = {f.name: f.bits // 8 for f in spec.fields}
    for f in spec.fields:
        if f.copies == 1:
            off = _align(off, widths[f.name])
            offsets[f.name] = (off,)
            off += widths[f.name]
    two = [f for f in spec.fields if f.copies == 2]
    if two:
        inner, inner_off = 0, {}
        for f in two:
            inner = _align(inner, widths[f.name])
            inner_off[f.name] = inner
            inner += widths[f.name]
        a = max(widths[f.name] for f in two)
        inner = _align(inner, a)
        off = _align(off, a)
        for f in two:
            offsets[f.name] = (off + inner_off[f.name], off + inner + inner_off[f.name])
        off += 2 * inner
    section = _align(off, 8)
    off = section + 8 + 4  # kmw_section, rwlock
    return Layout(offsets, widths, section, _align(off, CACHELINE))
