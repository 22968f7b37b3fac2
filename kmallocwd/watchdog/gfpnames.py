"""gfp flag names a scenario file may use, with Linux 4.4's values (the
patch's era, include/linux/gfp.h).

Every name comes from kmallocwd.gfp.  ``__GFP_RECLAIM`` is
``___GFP_DIRECT_RECLAIM | ___GFP_KSWAPD_RECLAIM`` = 0x400000 | 0x2000000:
a request with either bit starts the watchdog's timer.
"""

from __future__ import annotations

from kmallocwd import gfp


def _table() -> dict[str, int]:
    names = {k[1:]: v for k, v in vars(gfp).items()  # ___GFP_IO -> __GFP_IO, as kernel code spells it
             if k.startswith("___GFP_") and isinstance(v, int)}
    names["__GFP_RECLAIM"] = gfp.__GFP_RECLAIM
    names.update(gfp.NAMED)
    return names


NAMES: dict[str, int] = _table()
RECLAIM: int = gfp.__GFP_RECLAIM
GFP_MAX: int = (1 << 26) - 1  # 4.4 has 26 gfp bits (__GFP_BITS_SHIFT)


def parse(expr: str) -> int:
    """``"GFP_KERNEL | __GFP_COMP"`` or ``"0x24280ca"`` -> the mask.
    ValueError names the first unknown word."""
    value = 0
    words = [w.strip() for w in expr.split("|")]
    if not expr.strip() or any(not w for w in words):
        raise ValueError("an empty flag")
    for w in words:
        if w in NAMES:
            value |= NAMES[w]
            continue
        try:
            value |= int(w, 0)
        except ValueError:
            raise ValueError(f"unknown flag {w!r}") from None
    return value


def tracked(mask: int) -> bool:
    """True if start_memalloc_timer() records a request with this mask."""
    return bool(mask & RECLAIM)
