"""A campaign plan: a TOML file that expands into cells.

::

    [campaign]
    name = "nightly"            # optional; names the JUnit suite
    timeout_s = 120             # optional; per cell (default 3 x duration + 60 s)

    [[stress]]                  # a matrix; several [[stress]] tables add up
    protocols = ["v3", "seqcount", "mine.toml"]   # names, or protocol files
    threads = [1, 2]            # each key takes a value or a list of values
    slots = [1, 64]
    durations = [2]
    seeds = [1, 2]
    repeats = 1                 # each combination this many times, as separate cells
    [stress.knobs]
    alloc_ns = [0, 100]
    hold_ns = 0
    preempt = [0, 0.01]

    [[ablate]]                  # one cell per table (x repeats): kmallocwd ablate ARGS --json -
    args = ["-p", "seqcount"]
    [[check]]                   # kmallocwd check ARGS --json -
    args = ["-p", "v3"]

A bad plan raises UsageError with one line naming the key and the accepted
values: everything a cell would refuse is refused when the plan is loaded (the
stress values by kmallocwd/limits.py, the protocol files by the loader, the
ablate and check arguments by an optional ``check_args`` hook), and the number
of cells is computed before any is made."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import tomllib
from dataclasses import dataclass, field

from typing import Callable

from kmallocwd import limits, protocols
from kmallocwd.inputs import read_text
from kmallocwd.errors import UsageError

PLAN_LIMIT = 1 << 20          # bytes of plan TOML
PROTOCOL_FILE_LIMIT = 1 << 16  # bytes of one protocol file
MAX_CELLS = 100_000
MAX_THREADS = limits.MAX_THREADS
SUBCOMMANDS = ("ablate", "check")

TOP_KEYS = ("campaign", "stress", *SUBCOMMANDS)
CAMPAIGN_KEYS = ("name", "timeout_s")
STRESS_KEYS = ("protocols", "threads", "slots", "durations", "seeds", "repeats", "knobs",
               "timeout_s")
SUB_KEYS = ("args", "name", "repeats", "timeout_s")


@dataclass(frozen=True)
class Knob:
    option: str
    kind: str            # "int", "float", "bool"
    limit: limits.IntLimit | limits.FloatLimit | None = None
    default: object = None


KNOBS = {
    "hold_ns": Knob("--hold-ns", "int", limits.HOLD_NS, 0),
    "alloc_ns": Knob("--alloc-ns", "int", limits.ALLOC_NS, 0),
    "preempt": Knob("--preempt", "float", limits.PREEMPT, 0.0),
    "batch": Knob("--batch", "int", limits.BATCH, 65536),
    "pin": Knob("--pin", "bool", default=False),
    "until_torn": Knob("--until-torn", "bool", default=False),
}
# ``check_args(kind, args)``: raises UsageError if `kmallocwd KIND ARGS` would
# be refused (the CLI passes one that runs its own parser)
ArgsChecker = Callable[[str, list[str]], None]


@dataclass
class Cell:
    """One unit of work: ``python -m kmallocwd ARGV --json -`` on a worker."""

    id: str
    kind: str                      # "stress", "ablate", "check"
    argv: list[str]                # after "kmallocwd", without "--json -"
    timeout_s: float
    group: str                     # the protocol x configuration it is summed into
    protocol: str | None = None
    config: dict = field(default_factory=dict)
    seed: int | None = None
    repeat: int = 0
    files: dict[str, str] = field(default_factory=dict)  # "@file:NAME" in argv -> text

    def to_wire(self) -> dict:
        """What the worker needs (worker.run_cell's argument)."""
        return {"id": self.id, "argv": self.argv, "timeout_s": self.timeout_s,
                "files": self.files}

    def to_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "argv": self.argv, "timeout_s": self.timeout_s,
                "group": self.group, "protocol": self.protocol, "config": self.config,
                "seed": self.seed, "repeat": self.repeat,
                "files": {k: hashlib.sha256(v.encode()).hexdigest() for k, v in self.files.items()}}


@dataclass
class Plan:
    path: str
    name: str
    cells: list[Cell]
    dropped: list[str] = field(default_factory=list)   # combinations refused, with why

    @property
    def digest(self) -> str:
        """Identifies the plan's cells (not their timeouts): a results file is resumed
        only by the plan that made it."""
        h = hashlib.sha256()
        for c in self.cells:
            d = c.to_dict()
            h.update(json.dumps([d["id"], d["argv"], d["files"]], sort_keys=True).encode())
        return h.hexdigest()[:16]


# ---------------------------------------------------------------- value checks

def _fail(where: str, what: str, accepted: str) -> UsageError:
    return UsageError(f"{where}: {what} (accepted: {accepted})")


def _as_list(where: str, value, accepted: str) -> list:
    if isinstance(value, list):
        if not value:
            raise _fail(where, "empty list", accepted)
        return value
    if isinstance(value, dict):
        raise _fail(where, "a table", accepted)
    return [value]


def _bools(where: str, value) -> list[bool]:
    accepted = "true, false, or a list of them"
    out = []
    for v in _as_list(where, value, accepted):
        if not isinstance(v, bool):
            raise _fail(where, f"{v!r} is not a boolean", accepted)
        out.append(v)
    return out


def _one_int(where: str, value, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(where, f"{value!r} is not a whole number", f"a whole number {lo} to {hi}")
    if not lo <= value <= hi:
        raise _fail(where, f"{value} is out of range", f"a whole number {lo} to {hi}")
    return value


def _limited(where: str, value, limit) -> list:
    """Each value (or the one value) checked by its shared validator."""
    out = []
    for v in _as_list(where, value, f"{limit.span}, or a list of them"):
        try:
            out.append(limit.check(v))
        except ValueError as exc:
            raise UsageError(f"{where}: {exc}") from None
    return out


def _timeout(where: str, value) -> float:
    if isinstance(value, list):
        raise _fail(where, "a list", f"a number of seconds, {limits.CELL_TIMEOUT.span}")
    try:
        return limits.CELL_TIMEOUT.check(value)
    except ValueError as exc:
        raise UsageError(f"{where}: {str(exc).removesuffix(')')} seconds)") from None


def _check_keys(where: str, table: dict, accepted: tuple[str, ...]) -> None:
    for key in table:
        if key not in accepted:
            raise _fail(f"{where}.{key}" if where else key, "unknown key",
                        ", ".join(accepted))


def _tables(where: str, value) -> list[dict]:
    accepted = "a table, or an array of tables ([[" + where.split(":")[-1].strip() + "]])"
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list) and value and all(isinstance(t, dict) for t in value):
        return value
    raise _fail(where, f"{value!r} is not a table", accepted)


def _fmt(v) -> str:
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


# ---------------------------------------------------------------- expansion

def _protocol(where: str, value, base: str, files: dict[str, tuple[str, str]]) -> str:
    """A protocol name, or a protocol file (read now, shipped to the worker)."""
    accepted = f"{', '.join(protocols.NAMES)}, or a path to a protocol file (.toml)"
    if not isinstance(value, str) or not value:
        raise _fail(where, f"{value!r} is not a protocol", accepted)
    if value in protocols.NAMES:
        return value
    if not (value.endswith(".toml") or os.sep in value):
        raise _fail(where, f"unknown protocol {value!r}", accepted)
    path = value if os.path.isabs(value) else os.path.join(base, value)
    if not os.path.exists(path):
        raise _fail(where, f"no protocol file {value!r}", accepted)
    text = read_text(path, where, PROTOCOL_FILE_LIMIT)
    try:   # a bad protocol file is refused now, not by every cell that names it
        protocols.spec.load_text(text, path)
    except protocols.SpecError as exc:
        raise UsageError(f"{where}: {exc}") from None
    except RecursionError:
        raise _fail(where, f"protocol file {value!r} is nested too deeply",
                    "a protocol file (docs/protocols.md)") from None
    digest = hashlib.sha256(text.encode()).hexdigest()[:8]
    stem = os.path.splitext(os.path.basename(path))[0] or "protocol"
    label = f"{stem}@{digest}"
    files[label] = (os.path.basename(path), text)
    return label


def _stress_cells(where: str, t: dict, base: str, default_timeout: float | None,
                  dropped: list[str], budget: int = MAX_CELLS) -> list[Cell]:
    _check_keys(where, t, STRESS_KEYS)
    if "protocols" not in t:
        raise _fail(f"{where}.protocols", "missing",
                    f"{', '.join(protocols.NAMES)}, or protocol files")
    files: dict[str, tuple[str, str]] = {}
    protos = [_protocol(f"{where}.protocols", p, base, files)
              for p in _as_list(f"{where}.protocols", t["protocols"],
                                "a protocol name or file, or a list of them")]
    threads = _limited(f"{where}.threads", t.get("threads", 1), limits.THREADS)
    slots = _limited(f"{where}.slots", t.get("slots", 1), limits.SLOTS)
    durations = _limited(f"{where}.durations", t.get("durations", 5), limits.DURATION)
    seeds = _limited(f"{where}.seeds", t.get("seeds", 1), limits.SEED)
    repeats = _one_int(f"{where}.repeats", t.get("repeats", 1), 1, 10_000)
    timeout = _timeout(f"{where}.timeout_s", t["timeout_s"]) if "timeout_s" in t else default_timeout
    if timeout is not None and timeout <= max(durations):
        raise _fail(f"{where}.timeout_s" if "timeout_s" in t else f"{where}: campaign.timeout_s",
                    f"{timeout:g} s, not more than the duration {max(durations):g} s",
                    "more seconds than each cell's duration: the cell would always time out")
    knobs_t = t.get("knobs", {})
    if not isinstance(knobs_t, dict):
        raise _fail(f"{where}.knobs", f"{knobs_t!r} is not a table", "a table of "
                    + ", ".join(KNOBS))
    _check_keys(f"{where}.knobs", knobs_t, tuple(KNOBS))
    knob_values: list[tuple[str, list]] = []
    for name, value in knobs_t.items():
        k = KNOBS[name]
        kw = f"{where}.knobs.{name}"
        vals = _bools(kw, value) if k.limit is None else _limited(kw, value, k.limit)
        knob_values.append((name, vals))
    # the size first: the matrix is not made if it is too large
    size = len(seeds) * repeats * len(protos) * len(threads) * len(slots) * len(durations)
    for _, vals in knob_values:
        size *= len(vals)
    if size > budget:
        raise _fail(where, f"{size} cells ({len(protos)} protocols x {len(threads)} threads x "
                    f"{len(slots)} slots x {len(durations)} durations x "
                    + "".join(f"{len(v)} {n} x " for n, v in knob_values)
                    + f"{len(seeds)} seeds x {repeats} repeats)",
                    f"at most {MAX_CELLS} cells in a plan")

    cells = []
    knob_names = [n for n, _ in knob_values]
    for proto, th, sl, dur, knob_combo in itertools.product(
            protos, threads, slots, durations, itertools.product(*[v for _, v in knob_values])):
        if th > sl:
            dropped.append(f"{where}: threads {th} with slots {sl} (each slot has one writer: "
                           "threads must not exceed slots)")
            continue
        knobs = dict(zip(knob_names, knob_combo))
        argv = ["stress", "-q"]
        if proto in files:
            argv += ["--protocol-file", f"@file:{proto}"]
        else:
            argv += ["-p", proto]
        argv += ["-t", str(th), "-s", str(sl), "-d", _fmt(dur)]
        label = [proto, f"t{th}", f"s{sl}", f"d{_fmt(dur)}"]
        config = {"threads": th, "slots": sl, "duration": dur}
        for name in sorted(knobs):
            v = knobs[name]
            k = KNOBS[name]
            config[name] = v
            if k.kind == "bool":
                if v:
                    argv.append(k.option)
            else:
                argv += [k.option, _fmt(v)]
            if v != k.default:
                label.append(f"{name}={_fmt(v)}")
        group = " ".join(label)
        cell_timeout = timeout if timeout is not None else 3 * dur + 60
        for seed in seeds:
            for r in range(repeats):
                cells.append(Cell(
                    id="stress/" + "/".join(label) + f"/seed{seed}/r{r}", kind="stress",
                    argv=argv + ["--seed", str(seed)], timeout_s=cell_timeout, group=group,
                    protocol=proto, config=dict(config), seed=seed, repeat=r,
                    files={proto: files[proto][1]} if proto in files else {}))
    return cells


def _ship_protocol_files(where: str, args: list[str], base: str) -> tuple[list[str], dict]:
    """``--protocol-file F`` in ablate/check arguments: F is read now (relative to
    the plan), checked, and shipped with the cell as for [[stress]] protocols."""
    out: list[str] = []
    files: dict[str, tuple[str, str]] = {}
    i = 0
    while i < len(args):
        a = args[i]
        opt, eq, value = a.partition("=")
        if len(opt) >= len("--protocol-") and "--protocol-file".startswith(opt):
            if not eq:
                if i + 1 >= len(args):
                    break            # the missing value is the parser's to refuse
                i += 1
                value = args[i]
            path = value if os.path.isabs(value) else os.path.join(base, value)
            if not value or not os.path.exists(path):
                raise _fail(f"{where}.args", f"no protocol file {value!r}",
                            "a path to a protocol file, relative to the plan")
            label = _protocol(f"{where}.args", path, base, files)
            out += ["--protocol-file", f"@file:{label}"]
        else:
            out.append(a)
        i += 1
    return out, {k: v[1] for k, v in files.items()}


def _sub_cells(kind: str, where: str, t: dict, default_timeout: float | None,
               base: str = ".", check_args: ArgsChecker | None = None,
               budget: int = MAX_CELLS) -> list[Cell]:
    _check_keys(where, t, SUB_KEYS)
    accepted = f"a list of strings: the arguments of `kmallocwd {kind}`"
    if "args" not in t:
        raise _fail(f"{where}.args", "missing", accepted)
    args = t["args"]
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise _fail(f"{where}.args", f"{args!r} is not a list of strings", accepted)
    if any(a == "--json" or a.startswith("--json=") for a in args):
        raise _fail(f"{where}.args", "--json is added by the campaign", accepted + ", without --json")
    argv, files = _ship_protocol_files(where, args, base)
    if check_args is not None:
        try:
            check_args(kind, argv)
        except UsageError as exc:
            raise UsageError(f"{where}.args: {exc}") from None
    name = t.get("name", " ".join(args) or kind)
    if not isinstance(name, str) or not name or any(ord(ch) < 32 for ch in name):
        raise _fail(f"{where}.name", f"{name!r} is not a name", "a one-line string")
    repeats = _one_int(f"{where}.repeats", t.get("repeats", 1), 1, 10_000)
    if repeats > budget:
        raise _fail(f"{where}.repeats", f"{repeats} cells", f"at most {MAX_CELLS} cells in a plan")
    timeout = _timeout(f"{where}.timeout_s", t["timeout_s"]) if "timeout_s" in t else default_timeout
    return [Cell(id=f"{kind}/{name}/r{r}", kind=kind, argv=[kind, *argv],
                 timeout_s=timeout if timeout is not None else 600.0, group=f"{kind} {name}",
                 repeat=r, files=dict(files)) for r in range(repeats)]


def parse_plan(text: str, path: str = "PLAN", check_args: ArgsChecker | None = None) -> Plan:
    """Expand the plan's TOML text into cells (UsageError on a bad plan)."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML: {exc}") from None
    except RecursionError:
        raise UsageError(f"{path}: not valid TOML: nested too deeply") from None
    where = path
    for key in doc:
        if key not in TOP_KEYS:
            raise _fail(f"{where}: {key}", "unknown key", ", ".join(TOP_KEYS))
    camp = doc.get("campaign", {})
    if not isinstance(camp, dict):
        raise _fail(f"{where}: campaign", f"{camp!r} is not a table", "a table [campaign]")
    for key in camp:
        if key not in CAMPAIGN_KEYS:
            raise _fail(f"{where}: campaign.{key}", "unknown key", ", ".join(CAMPAIGN_KEYS))
    name = camp.get("name", os.path.splitext(os.path.basename(path))[0] or "campaign")
    if not isinstance(name, str) or not name or any(ord(ch) < 32 for ch in name):
        raise _fail(f"{where}: campaign.name", f"{name!r} is not a name", "a one-line string")
    default_timeout = (_timeout(f"{where}: campaign.timeout_s", camp["timeout_s"])
                       if "timeout_s" in camp else None)
    base = os.path.dirname(os.path.abspath(path)) if path != "PLAN" else os.getcwd()
    cells: list[Cell] = []
    dropped: list[str] = []
    if "stress" in doc:
        tables = _tables(f"{where}: stress", doc["stress"])
        for i, t in enumerate(tables):
            cells += _stress_cells(f"{where}: stress[{i}]" if len(tables) > 1 else f"{where}: stress",
                                   t, base, default_timeout, dropped, MAX_CELLS - len(cells))
    for kind in SUBCOMMANDS:
        if kind in doc:
            tables = _tables(f"{where}: {kind}", doc[kind])
            for i, t in enumerate(tables):
                cells += _sub_cells(kind, f"{where}: {kind}[{i}]", t, default_timeout, base,
                                    check_args, MAX_CELLS - len(cells))
    if not cells:
        if dropped:
            raise UsageError(f"{where}: no cell left: {dropped[0]}")
        raise _fail(where, "no cell", "a [[stress]] table with protocols, or [[ablate]] "
                    "or [[check]] tables")
    if len(cells) > MAX_CELLS:
        raise _fail(where, f"{len(cells)} cells", f"at most {MAX_CELLS}")
    seen: dict[str, int] = {}
    for c in cells:
        if c.id in seen:
            raise _fail(where, f"cell {c.id!r} appears twice", "each combination once: "
                        "use repeats for more runs of it, or distinct names")
        seen[c.id] = 1
    return Plan(path=path, name=name, cells=cells, dropped=dropped)


def load_plan(path: str, check_args: ArgsChecker | None = None) -> Plan:
    """Read and expand PLAN.toml (bounded read; UsageError on a bad plan)."""
    return parse_plan(read_text(path, "PLAN", PLAN_LIMIT), path, check_args)
