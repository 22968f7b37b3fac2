"""``kmallocwd classify LOG``: read a kernel console log as the patch's
Documentation tells a person to read the watchdog's reports, and print the
same summary ``kmallocwd run`` ends with."""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "classify",
        help="classify a kernel console log's MemAlloc reports (a real one, or run's)",
        description="Read a kernel console log (dmesg or a serial console, with or without "
        "timestamps, other lines interleaved, parts missing) and find the memory allocation "
        "watchdog's reports in it: v3's 'MemAlloc-Info: X stalling task, ...' lines and the "
        "later revisions' 'MemAlloc-Info: stalling=X dying=Y exiting=E victim=Z oom_count=O', "
        "their 'MemAlloc: name(pid) ...' task lines, the OOM killer's 'invoked oom-killer' "
        "and 'Killed process' lines, 4.9's 'page allocation stalls for' and khungtaskd's "
        "'blocked for more than'; the JSON Lines of 'kmallocwd run --json' are read too. "
        "Prints the summary 'kmallocwd run' ends with: the reports, each stalling task's seq "
        "compared between reports, the counts' and oom_count's trends, and the classification "
        "(oom-victim-stuck, overloaded, reclaim-livelock, no-oom-possible, undetermined, "
        "quiet) with its evidence. Exit 0, 2 on bad usage or an unreadable log.",
    )
    p.add_argument("log", metavar="LOG", help="the log file, or - for standard input")
    p.add_argument("--json", action="store_true",
                   help="print the summary as one JSON object (the schema of run's summary "
                   "record) instead of text")
    p.set_defaults(func=run)


def printable(line: str) -> str:
    """A line of the log as it may reach a terminal: every control or other
    non-printable character escaped (a log line is hostile text)."""
    if line.isprintable():
        return line
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii")
                   for c in line)


def run(args: argparse.Namespace) -> int:
    from kmallocwd.inputs import read_stdin, read_text
    from kmallocwd.watchdog.logread import LOG_LIMIT, summarize

    if args.log == "-":
        text, source = read_stdin("LOG", LOG_LIMIT), "-"
    else:
        text, source = read_text(args.log, "LOG", LOG_LIMIT), args.log
    summary = summarize(text, source)
    if args.json:
        sys.stdout.write(json.dumps(summary.to_json(), separators=(",", ":")) + "\n")
    else:
        sys.stdout.write("".join(printable(line) + "\n" for line in summary.lines()[1:]))
    return 0
