"""A campaign's results: the cells' records, merged into histograms per
protocol x configuration and per machine, one verdict, the results file
(schema ``kmallocwd.campaign/1``) and the summary table.

Cell reports are read generically, so that the stress JSON may grow: every
integer ``outcomes.*.count`` is summed, and every top-level integer counter
(``retries``, ``writer_ops``, ``reader_snapshots``, ``overlaps``, ...);
``first_torn`` is kept as it is; the verdict is the process's exit status."""

from __future__ import annotations

import datetime
import json
import time
from dataclasses import dataclass, field

from kmallocwd import __version__
from kmallocwd.campaign.plan import Cell, Plan
from kmallocwd.campaign.worker import VERDICTS
from kmallocwd.escape import one_line
from kmallocwd.errors import (EXIT_FORBIDDEN, EXIT_INCONCLUSIVE, EXIT_OK, EXIT_UNOBSERVED,
                              UsageError)

SCHEMA = "kmallocwd.campaign/1"
NOT_COUNTERS = {"exit_status"}
FAILED = "failed"
MAX_HISTORY = 1000    # earlier runs kept in a results file


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def outcome_counts(report) -> dict[str, int]:
    out: dict[str, int] = {}
    outcomes = report.get("outcomes") if isinstance(report, dict) else None
    if isinstance(outcomes, dict):
        for name, o in outcomes.items():
            if isinstance(o, dict) and _is_int(o.get("count")):
                out[name] = o["count"]
    return out


def outcome_expects(report) -> dict[str, str]:
    out: dict[str, str] = {}
    outcomes = report.get("outcomes") if isinstance(report, dict) else None
    if isinstance(outcomes, dict):
        for name, o in outcomes.items():
            if isinstance(o, dict) and isinstance(o.get("expect"), str):
                out[name] = o["expect"]
    return out


def counters(report) -> dict[str, int]:
    if not isinstance(report, dict):
        return {}
    return {k: v for k, v in report.items() if _is_int(v) and k not in NOT_COUNTERS}


def forbidden_outcomes(report) -> list[str]:
    if isinstance(report, dict):
        seen = report.get("forbidden_seen")
        if isinstance(seen, list) and all(isinstance(s, str) for s in seen):
            return list(seen)
    expects = outcome_expects(report)
    return [n for n, c in outcome_counts(report).items() if c and expects.get(n) == "forbidden"]


def _str_or_none(v) -> bool:
    return v is None or isinstance(v, str)


def _num_or_none(v) -> bool:
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool))


def _int_table(v) -> bool:
    return isinstance(v, dict) and all(isinstance(k, str) and _is_int(n) for k, n in v.items())


def _machine_ok(m) -> bool:
    return m is None or (isinstance(m, dict)
                         and all(_str_or_none(m.get(k))
                                 for k in ("hostname", "cpu", "arch", "python", "kmallocwd"))
                         and (m.get("cores") is None or _is_int(m.get("cores"))))


def _worker_ok(w) -> bool:
    return w is None or (isinstance(w, dict) and _str_or_none(w.get("address")))


# a finished cell's record as read back from a results file: each key the
# merging, the table and the JUnit read, and what it must be
RECORD_SHAPE: tuple[tuple[str, str, object], ...] = (
    ("exit_status", "a whole number", lambda v: _is_int(v) and v in VERDICTS),
    ("verdict", "pass, forbidden, inconclusive or unobserved",
     lambda v: v in VERDICTS.values()),
    ("counts", "a table of whole numbers", _int_table),
    ("counters", "a table of whole numbers", _int_table),
    ("forbidden", "a list of outcome names",
     lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v)),
    ("machine", "a table of hostname, cpu, arch, cores", _machine_ok),
    ("worker", "a table with an address", _worker_ok),
    ("attempts", "a list of tables",
     lambda v: isinstance(v, list) and all(
         isinstance(a, dict) and _str_or_none(a.get("hostname")) and _worker_ok(a.get("worker"))
         and _str_or_none(a.get("error")) and _num_or_none(a.get("elapsed_s")) for a in v)),
    ("report", "a table", lambda v: v is None or isinstance(v, dict)),
    ("error", "a string", _str_or_none),
    ("elapsed_s", "a number of seconds", _num_or_none),
    ("started_at", "a string", _str_or_none),
    ("stderr_tail", "a string", _str_or_none),
)


def record_problem(rec: dict) -> str | None:
    """What is wrong with a done record read back from a results file (None: nothing)."""
    for key, what, ok in RECORD_SHAPE:
        if key in ("stderr_tail", "started_at", "error") and key not in rec:
            continue
        if key not in rec:
            return f"no {key!r}"
        if not ok(rec[key]):  # type: ignore[operator]
            return f"{key!r} is not {what}"
    if rec["verdict"] != VERDICTS[rec["exit_status"]]:
        return f"'verdict' {rec['verdict']!r} is not that of exit status {rec['exit_status']}"
    return None


def make_record(cell: Cell, attempts: list[dict]) -> dict:
    """The cell's record from its attempts (the last one decides)."""
    last = attempts[-1]
    done = last.get("status") == "done"
    report = last.get("report") if done else None
    rec = {
        "id": cell.id, "kind": cell.kind, "group": cell.group, "protocol": cell.protocol,
        "config": cell.config, "seed": cell.seed, "repeat": cell.repeat,
        "argv": cell.argv,
        "status": "done" if done else FAILED,
        "exit_status": last.get("exit_status"),
        "verdict": VERDICTS.get(last.get("exit_status"), FAILED) if done else FAILED,
        "error": None if done else (last.get("error") or "failed"),
        "machine": last.get("machine"), "worker": last.get("worker"),
        "started_at": last.get("started_at"), "elapsed_s": last.get("elapsed_s"),
        "counts": outcome_counts(report), "counters": counters(report),
        "first_torn": report.get("first_torn") if isinstance(report, dict) else None,
        "forbidden": forbidden_outcomes(report) if done and last.get("exit_status") == 1 else [],
        "report": report,
        "attempts": [{"status": a.get("status"), "exit_status": a.get("exit_status"),
                      "error": a.get("error"), "worker": a.get("worker"),
                      "hostname": (a.get("machine") or {}).get("hostname"),
                      "started_at": a.get("started_at"), "elapsed_s": a.get("elapsed_s")}
                     for a in attempts],
    }
    if not done and last.get("stderr_tail"):
        rec["stderr_tail"] = last["stderr_tail"]
    return rec


@dataclass
class Campaign:
    """The state of one campaign: its plan and the records of the cells finished."""

    plan: Plan
    records: dict[str, dict] = field(default_factory=dict)
    resumed: set[str] = field(default_factory=set)    # ids done before this run
    started_at: str = field(default_factory=_now)
    t0: float = field(default_factory=time.monotonic)
    interrupted: bool = False
    scheduler: str | None = None
    workers: int | None = None
    history: list[dict] = field(default_factory=list)   # the earlier runs of a resumed campaign

    # ------------------------------------------------------------ resume
    def resume_from(self, text: str, where: str) -> int:
        """Take the done cells of a results file of the same plan; returns how many."""
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise UsageError(f"{where}: exists and is not a campaign results file ({exc}); "
                             "give another path, or --fresh to replace it") from None
        if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
            raise UsageError(f"{where}: exists and is not a campaign results file (schema "
                             f"{SCHEMA}); give another path, or --fresh to replace it")
        digest = (doc.get("plan") or {}).get("digest") if isinstance(doc.get("plan"), dict) else None
        if digest != self.plan.digest:
            raise UsageError(f"{where}: holds the results of another plan (digest {digest}, "
                             f"this plan's is {self.plan.digest}); give another path, or "
                             "--fresh to replace it")
        hist = doc.get("history")
        self.history = [h for h in hist if isinstance(h, dict)] if isinstance(hist, list) else []
        self.history = self.history[-MAX_HISTORY:]
        by_id = {c.id: c for c in self.plan.cells}
        cells = doc.get("cells")
        n = 0
        for i, rec in enumerate(cells if isinstance(cells, list) else []):
            if isinstance(rec, dict) and rec.get("status") == "done" \
                    and isinstance(rec.get("id"), str) and rec["id"] in by_id:
                problem = record_problem(rec)
                if problem is not None:
                    raise UsageError(f"{where}: cells[{i}] ({rec['id']!r}): {problem} "
                                     "(accepted: a results file kmallocwd wrote; --fresh to "
                                     "replace it)")
                cell = by_id[rec["id"]]
                # what the plan says about the cell is the plan's, not the file's
                rec.update(id=cell.id, kind=cell.kind, group=cell.group, protocol=cell.protocol,
                           config=cell.config, seed=cell.seed, repeat=cell.repeat,
                           argv=cell.argv)
                self.records[rec["id"]] = rec
                self.resumed.add(rec["id"])
                n += 1
        return n

    def todo(self) -> list[Cell]:
        return [c for c in self.plan.cells
                if self.records.get(c.id, {}).get("status") != "done"]

    def add(self, cell: Cell, attempts: list[dict]) -> dict:
        rec = make_record(cell, attempts)
        self.records[cell.id] = rec
        return rec

    # ------------------------------------------------------------ merging
    def _ordered(self) -> list[dict]:
        return [self.records[c.id] for c in self.plan.cells if c.id in self.records]

    def groups(self) -> list[dict]:
        out: dict[str, dict] = {}
        for c in self.plan.cells:
            g = out.setdefault(c.group, {
                "group": c.group, "kind": c.kind, "protocol": c.protocol,
                "config": {k: v for k, v in c.config.items()}, "cells": 0, "cells_run": 0,
                "verdicts": {}, "outcomes": {}, "counters": {}, "forbidden_cells": [],
                "by_machine": {}})
            g["cells"] += 1
            rec = self.records.get(c.id)
            if rec is None:
                continue
            g["cells_run"] += 1
            g["verdicts"][rec["verdict"]] = g["verdicts"].get(rec["verdict"], 0) + 1
            if rec["status"] != "done":
                continue
            expects = outcome_expects(rec.get("report"))
            host = (rec.get("machine") or {}).get("hostname", "?")
            m = g["by_machine"].setdefault(host, {"cells": 0, "outcomes": {}})
            m["cells"] += 1
            for name, n in rec["counts"].items():
                o = g["outcomes"].setdefault(name, {"count": 0, "expect": expects.get(name)})
                o["count"] += n
                m["outcomes"][name] = m["outcomes"].get(name, 0) + n
            for name, n in rec["counters"].items():
                g["counters"][name] = g["counters"].get(name, 0) + n
            if rec["verdict"] == "forbidden":
                g["forbidden_cells"].append(rec["id"])
        return list(out.values())

    def machines(self) -> list[dict]:
        out: dict[str, dict] = {}
        for rec in self._ordered():
            for a in rec.get("attempts", []):
                host = a.get("hostname")
                if host and host not in out:
                    out[host] = {"hostname": host, "cpu": None, "arch": None, "cores": None,
                                 "cells": 0, "verdicts": {}, "workers": []}
            m = rec.get("machine") or {}
            host = m.get("hostname")
            if not host:
                continue
            e = out.setdefault(host, {"hostname": host, "cells": 0, "verdicts": {},
                                      "workers": []})
            for k in ("cpu", "arch", "cores", "python", "kmallocwd"):
                if m.get(k) is not None:
                    e[k] = m[k]
            e["cells"] += 1
            e["verdicts"][rec["verdict"]] = e["verdicts"].get(rec["verdict"], 0) + 1
            w = (rec.get("worker") or {}).get("address")
            if w and w not in e["workers"]:
                e["workers"].append(w)
        return list(out.values())

    def verdict(self) -> dict:
        recs = self._ordered()
        by = {v: [r for r in recs if r["verdict"] == v]
              for v in ("forbidden", "unobserved", "inconclusive", FAILED, "pass")}
        pending = [c.id for c in self.plan.cells if c.id not in self.records]
        total = len(self.plan.cells)

        def where(r: dict) -> str:
            m = r.get("machine") or {}
            return f"{r['id']} on {m.get('hostname', '?')} ({m.get('arch', '?')})"

        def some(rs: list[dict], extra=lambda r: "") -> str:
            shown = "; ".join(where(r) + extra(r) for r in rs[:3])
            return shown + (f"; and {len(rs) - 3} more" if len(rs) > 3 else "")

        if by["forbidden"]:
            status = EXIT_FORBIDDEN
            line = (f"FAIL: forbidden outcome seen in {len(by['forbidden'])} of {total} cells: "
                    + some(by["forbidden"], lambda r: ": " + ", ".join(r["forbidden"] or ["?"])))
        elif by["unobserved"]:
            status = EXIT_UNOBSERVED
            line = (f"UNOBSERVED: {len(by['unobserved'])} of {total} cells did not observe what "
                    "the model says the protocol can do: " + some(by["unobserved"]))
        elif by[FAILED] or by["inconclusive"] or pending:
            status = EXIT_INCONCLUSIVE
            parts = []
            if by[FAILED]:
                parts.append(f"{len(by[FAILED])} failed (" + some(
                    by[FAILED], lambda r: ": " + (r.get("error") or "")) + ")")
            if by["inconclusive"]:
                parts.append(f"{len(by['inconclusive'])} inconclusive ("
                             + some(by["inconclusive"]) + ")")
            if pending:
                parts.append(f"{len(pending)} not run")
            line = f"INCONCLUSIVE: {total} cells, " + ", ".join(parts)
        else:
            status = EXIT_OK
            line = f"PASS: no forbidden outcome in {total} cells"
        return {"exit_status": status, "line": line,
                "counts": {k: len(v) for k, v in by.items()} | {"pending": len(pending)},
                "forbidden": [{"cell": r["id"], "machine": (r.get("machine") or {}).get("hostname"),
                               "arch": (r.get("machine") or {}).get("arch"),
                               "outcomes": r["forbidden"], "first_torn": r.get("first_torn")}
                              for r in by["forbidden"]],
                "failed": [{"cell": r["id"], "error": r.get("error")} for r in by[FAILED]],
                "pending": pending}

    def this_run(self) -> dict:
        return {"started_at": self.started_at,
                "elapsed_s": round(time.monotonic() - self.t0, 3),
                "cells_finished": len(self.records) - len(self.resumed),
                "interrupted": self.interrupted, "scheduler": self.scheduler,
                "workers": self.workers}

    def to_dict(self) -> dict:
        recs = self._ordered()
        return {
            "schema": SCHEMA, "kmallocwd": __version__,
            "plan": {"path": self.plan.path, "name": self.plan.name,
                     "digest": self.plan.digest, "cells": len(self.plan.cells),
                     "dropped": self.plan.dropped},
            "scheduler": self.scheduler, "workers": self.workers,
            "started_at": self.started_at, "updated_at": _now(),
            "elapsed_s": round(time.monotonic() - self.t0, 3),
            "interrupted": self.interrupted,
            "complete": len(recs) == len(self.plan.cells)
            and all(r["status"] == "done" for r in recs),
            "resumed_cells": len(self.resumed),
            "history": self.history + [self.this_run()],
            "verdict": self.verdict(),
            "groups": self.groups(),
            "machines": self.machines(),
            "cells": recs,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1) + "\n"


# ---------------------------------------------------------------- the table

def _n(v: int) -> str:
    return f"{v:,}"


def render(doc: dict) -> str:
    """The summary: one line per protocol x configuration, the machines, the failures,
    and the verdict.  Every text from the plan or the results file (names,
    hostnames, errors) is shown escaped (kmallocwd/escape.py)."""
    esc = one_line
    plan = doc["plan"]
    v = doc["verdict"]
    lines = [f"kmallocwd campaign: {esc(plan['name'])} ({esc(plan['path'])}, plan "
             f"{esc(plan['digest'])}), "
             f"{plan['cells']} cells: {len(doc['cells'])} finished "
             f"({doc['resumed_cells']} from the results file), {v['counts']['pending']} not run; "
             f"{doc['elapsed_s']:.1f} s"
             + (" [interrupted]" if doc["interrupted"] else "")]
    stress = [g for g in doc["groups"] if g["outcomes"]]
    if stress:
        names: list[str] = []
        for g in stress:
            for n in g["outcomes"]:
                if n not in names:
                    names.append(n)
        width = max(len(esc(g["group"])) for g in stress)
        head = f"  {'protocol x configuration':<{width}}  {'cells':>5}  " + "  ".join(
            f"{esc(n):>16}" for n in names) + "  verdicts"
        lines.append(head)
        for g in stress:
            cols = []
            for n in names:
                o = g["outcomes"].get(n)
                txt = _n(o["count"]) if o else "-"
                if o and o["count"] and o.get("expect") == "forbidden":
                    txt += "!"
                cols.append(f"{txt:>16}")
            verdicts = ", ".join(f"{esc(k)} {c}" for k, c in sorted(g["verdicts"].items()))
            lines.append(f"  {esc(g['group']):<{width}}  {g['cells_run']:>2}/{g['cells']:<2}  "
                         + "  ".join(cols) + f"  {verdicts}")
        lines.append("  (! = a count of an outcome the protocol forbids)")
    others = [g for g in doc["groups"] if not g["outcomes"] and g["cells_run"]]
    for g in others:
        verdicts = ", ".join(f"{esc(k)} {c}" for k, c in sorted(g["verdicts"].items()))
        lines.append(f"  {esc(g['group'])}: {g['cells_run']}/{g['cells']} cells, {verdicts}")
    if doc["machines"]:
        lines.append("  machines:")
        for m in doc["machines"]:
            verdicts = ", ".join(f"{esc(k)} {c}" for k, c in sorted(m["verdicts"].items()))
            lines.append(f"    {esc(m['hostname'])}  {esc(m.get('arch') or '?')}  "
                         f"{esc(m.get('cpu') or '?')}  {esc(m.get('cores') or '?')} cores  "
                         f"{m['cells']} cells"
                         + (f" ({verdicts})" if verdicts else "")
                         + f"  {len(m['workers'])} worker(s)")
    for f in v["failed"]:
        lines.append(f"  failed: {esc(f['cell'])}: {esc(f['error'])}")
    for note in plan.get("dropped", [])[:5]:
        lines.append(f"  not run (plan): {esc(note)}")
    lines.append(esc(v["line"]))
    return "\n".join(lines) + "\n"
