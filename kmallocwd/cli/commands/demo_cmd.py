"""``kmallocwd demo``: v3 next to seqcount and none, a few seconds each."""

from __future__ import annotations

import argparse
import sys

from kmallocwd.cli.argtypes import float_range

DEMO = ("v3", "seqcount", "none")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="a few seconds of v3 next to seqcount and none",
        description="Stress v3 (the patch), seqcount (the kernel's) and none (no protection) "
        "one after another with 1 writer on 1 slot, and show side by side that v3 accepts "
        "torn snapshots and seqcount does not.",
    )
    p.add_argument("--duration", "-d", type=float_range(0, 600, lo_open=True), default=3.0,
                   help="seconds per protocol (default 3)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from kmallocwd import api

    rows = []
    for name in DEMO:
        print(f"stressing {name} for {args.duration:g} s...", file=sys.stderr)
        # the README's CI configuration: records valid most of the time
        res = api.stress(name, duration=args.duration, alloc_ns=100, hold_ns=50)
        rows.append(res)
        if res.interrupted:
            break
    print(f"{'protocol':<10} {'accepted':>14} {'torn':>10} {'overlaps':>10} {'first torn':>11}"
          "  verdict")
    for r in rows:
        first = "-" if r.first_torn is None else f"{r.first_torn['after_s']:.4f} s"
        bad = r.forbidden_seen
        verdict = f"FORBIDDEN {', '.join(bad)} seen" if bad else "ok"
        print(f"{r.protocol:<10} {r.accepted:>14,} {r.torn:>10,} {r.overlaps:>10,} "
              f"{first:>11}  {verdict}")
    print("v3 re-reads the sequence only before its copy, so a section that starts during "
          "the copy goes unseen; seqcount re-reads it after the copy, retries, and accepts "
          "no torn snapshot.")
    return rows[-1].exit_status if rows[-1].interrupted else 0
