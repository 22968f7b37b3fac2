"""Check our ``weak`` verdicts against herd7 + the LKMM, where herd7 is
installed (docs/model.md, "Agreement with the LKMM"):

    python -m kmallocwd.model.herd --herd herd7 --lkmm DIR [--libdir D] [-p NAME ...]
        [-f FILE ...] [--ablations] [-k K]

DIR holds linux-kernel.cfg (the kernel's tools/memory-model); --libdir is
herdtools7's herd/libdir when herd7 is not installed (stdlib.cat).  Prints
one row per protocol (with --ablations, also one per ablated variant, as
``kmallocwd ablate`` and ``kmallocwd litmus --ablation N`` number them) and
exits 1 if any verdict differs.  herd7 takes
minutes per built-in at K = 2."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kmallocwd.model.explore import explore
from kmallocwd.model.litmus import ablation_variants, render
from kmallocwd.protocols import BY_NAME, PROTOCOLS, load_path

OBS = re.compile(r"^Observation (\S+) (Always|Sometimes|Never) (\d+) (\d+)", re.M)


def herd_verdict(herd: str, lkmm: str, libdir: str | None, text: str,
                 timeout: float = 1800) -> tuple[str, str]:
    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "t.litmus"
        f.write_text(text)
        cmd = [herd, "-I", lkmm] + (["-I", libdir] if libdir else []) + \
            ["-conf", "linux-kernel.cfg", str(f)]
        out = subprocess.run(cmd, cwd=lkmm, capture_output=True, text=True,
                             timeout=timeout).stdout
    m = OBS.search(out)
    if not m:
        return "error", out.strip().splitlines()[-1] if out.strip() else "no output"
    v = "never" if m.group(2) == "Never" else "sometimes"
    return v, f"{m.group(2)} {m.group(3)} {m.group(4)}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m kmallocwd.model.herd")
    ap.add_argument("--herd", default="herd7")
    ap.add_argument("--lkmm", required=True)
    ap.add_argument("--libdir", default=None)
    ap.add_argument("-p", "--protocol", action="append", default=None,
                    choices=sorted(BY_NAME))
    ap.add_argument("-f", "--protocol-file", action="append", default=None,
                    help="a protocol file of your own (repeatable)")
    ap.add_argument("--ablations", action="store_true",
                    help="also each ablated variant (kmallocwd litmus --ablation N)")
    ap.add_argument("-k", "--sections", type=int, default=2, choices=range(1, 5))
    a = ap.parse_args(argv)
    specs = [BY_NAME[n] for n in a.protocol or ()] + [load_path(f) for f in
                                                      a.protocol_file or ()]
    if not specs:
        specs = list(PROTOCOLS)
    runs: list[tuple[str, object]] = []
    for spec in specs:
        runs.append((spec.name, spec))
        if a.ablations:
            runs += [(f"{spec.name} #{i} {label}", v)
                     for i, (label, v) in enumerate(ablation_variants(spec), 1)]
    bad = 0
    for label, spec in runs:
        ours = "sometimes" if explore(spec, "weak", a.sections).sometimes else "never"
        t0 = time.perf_counter()
        v, obs = herd_verdict(a.herd, a.lkmm, a.libdir, render(spec, a.sections))
        agree = v == ours
        bad += not agree
        print(f"{label:<18} herd7: {obs:<24} ours (weak): {ours:<9} "
              f"{'agree' if agree else 'DIFFER'}  {time.perf_counter() - t0:.0f}s", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
