"""``python -m kmallocwd.cli.scancost``: the watchdog's own cost, one scan
of N slots in C, as a table or JSON (kmallocwd.watchdog.scancost measures)."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

from kmallocwd import protocols
from kmallocwd.cli.argtypes import int_range
from kmallocwd.cli.main import Parser
from kmallocwd.stress.slots import max_slots
from kmallocwd.watchdog.scancost import __doc__ as DOC, measure


def main(argv: list[str] | None = None) -> int:
    p = Parser(prog="python -m kmallocwd.cli.scancost",
               description=DOC.split("\n\n")[0])
    p.add_argument("--slots", type=int_range(1, max_slots()), nargs="+",
                   default=[10_000, 1_000_000],
                   help="slot counts to measure (default 10000 1000000)")
    p.add_argument("--protocols", nargs="+", default=["v3", "seqcount"],
                   choices=protocols.C_NAMES, help="protocols (default v3 seqcount)")
    p.add_argument("--repeat", type=int_range(1, 10_000), default=21,
                   help="timed calls per figure (default 21)")
    p.add_argument("--json", action="store_true", help="JSON on stdout instead of a table")
    args = p.parse_args(argv)
    rows = [measure(pr, n, max(1, args.repeat)) for n in args.slots for pr in args.protocols]
    if args.json:
        json.dump([asdict(r) | {"scan_ms": r.scan_ms, "ns_per_slot": r.ns_per_slot}
                   for r in rows], sys.stdout, indent=2)
        print()
        return 0
    print(f"{'slots':>10} {'protocol':<10} {'first loop':>12} {'count pass':>12} "
          f"{'one scan':>12} {'ns/slot':>8}   (medians of {args.repeat})")
    for r in rows:
        print(f"{r.slots:>10,} {r.protocol:<10} {r.due_ms:>9.3f} ms {r.count_ms:>9.3f} ms "
              f"{r.scan_ms:>9.3f} ms {r.ns_per_slot:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
