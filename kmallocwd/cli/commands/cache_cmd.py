"""``kmallocwd cache``: where the compile cache of protocol files is, what it
holds (``--info``, the default; ``--json``), and ``--clear`` to empty it."""

from __future__ import annotations

import argparse
import datetime
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "cache",
        help="show or clear the compile cache of protocol files",
        description="A protocol file of your own is compiled on first use into a per-user "
        "cache ($KMALLOCWD_CACHE, else $XDG_CACHE_HOME/kmallocwd, else ~/.cache/kmallocwd); "
        "every entry is checked before it is loaded.  The cache keeps at most "
        "$KMALLOCWD_CACHE_MAX_MB megabytes (200) and $KMALLOCWD_CACHE_MAX_ENTRIES entries "
        "(100), the least recently used going first.  Without an option, --info.",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument("--info", action="store_true",
                   help="print where the cache is, its entries and their size (the default)")
    g.add_argument("--clear", action="store_true",
                   help="remove every entry (an entry being built elsewhere is kept)")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.set_defaults(func=run)


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB"


def _clean(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)


def run(args: argparse.Namespace) -> int:
    from kmallocwd import buildcache

    if args.clear:
        root, removed, busy, freed = buildcache.clear()
        if args.json:
            json.dump({"root": root, "removed": removed, "busy": busy, "bytes_freed": freed},
                      sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            print(f"{_clean(root)}: removed {removed} entr{'y' if removed == 1 else 'ies'} "
                  f"({_mb(freed)})" + (f", {busy} in use kept" if busy else ""))
        return 0
    info = buildcache.info()
    if args.json:
        json.dump(info.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    print(f"cache: {_clean(info.root)}" + ("" if info.exists else " (not created yet)"))
    print(f"entries: {len(info.entries)}, {_mb(info.size)} (cap {_mb(info.max_bytes)}, "
          f"{info.max_entries} entries)")
    for e in sorted(info.entries, key=lambda e: -e.last_used):
        used = datetime.datetime.fromtimestamp(e.last_used).strftime("%Y-%m-%d %H:%M")
        print(f"  {e.key}  {_mb(e.size):>9}  used {used}  {_clean(e.protocol or '?')}"
              + ("" if e.ok else "  (fails its checks: rebuilt on next use)"))
    return 0
