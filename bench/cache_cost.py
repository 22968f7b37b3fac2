"""What the compile cache's checks cost per run: load_module() of a user's
protocol file on a warm cache (key, checks, load), next to a bare load of the
same module file (no key, no check), each in a fresh process, side by side.

    python bench/cache_cost.py PROTOCOL.toml [-n 21]

Prints the median (and min, max) milliseconds of each, and of the parts."""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

CHILD = r"""
import importlib.machinery, importlib.util, json, os, sys, time
from kmallocwd.protocols import load_path
from kmallocwd.protocols import usermod
from kmallocwd.buildcache import Cache
import dataclasses
spec = load_path(sys.argv[1])
out = {}
if sys.argv[2] == "checked":
    t0 = time.perf_counter()
    usermod.load_module(spec)
    out["load_module"] = time.perf_counter() - t0
else:
    csrc = usermod.csrc_dir()
    c = usermod.generate([dataclasses.replace(spec, path="")], origin=spec.name)
    t0 = time.perf_counter()
    k = usermod.key(c, csrc)
    t1 = time.perf_counter()
    cache = Cache()
    fd = cache.lookup(k)
    t2 = time.perf_counter()
    assert fd is not None, "warm the cache first"
    path = str(next((cache.root / k).glob("*.so")))
    t3 = time.perf_counter()
    name = f"_kmw_user_{k}"
    loader = importlib.machinery.ExtensionFileLoader(name, path)
    spec_ = importlib.util.spec_from_file_location(name, path, loader=loader)
    loader.exec_module(importlib.util.module_from_spec(spec_))
    t4 = time.perf_counter()
    out.update(key=t1 - t0, checks=t2 - t1, bare_load=t4 - t3)
print(json.dumps(out))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("protocol_file")
    ap.add_argument("-n", type=int, default=21)
    a = ap.parse_args()
    cli = [sys.executable, "-m", "kmallocwd", "stress", "-q", "--protocol-file", a.protocol_file,
           "-n", "1", "--json", "-"]
    subprocess.run(cli, capture_output=True, check=False)  # warm the cache
    runs: dict[str, list[float]] = {}
    for _ in range(a.n):
        for mode in ("checked", "parts"):
            r = subprocess.run([sys.executable, "-c", CHILD, a.protocol_file, mode],
                               capture_output=True, text=True, check=True)
            for k, v in json.loads(r.stdout).items():
                runs.setdefault(k, []).append(v * 1000)
    import time
    wall = []
    for _ in range(a.n):
        t0 = time.perf_counter()
        subprocess.run(cli, capture_output=True, check=False)
        wall.append((time.perf_counter() - t0) * 1000)
    runs["whole `stress -n 1` run (wall)"] = wall
    for k, v in runs.items():
        print(f"{k:32} median {statistics.median(v):8.2f} ms  (min {min(v):.2f}, "
              f"max {max(v):.2f}, n={len(v)})")


if __name__ == "__main__":
    main()
