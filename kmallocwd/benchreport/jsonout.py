"""The report as one JSON document (``bench-report --json``)."""

from __future__ import annotations

import kmallocwd.benchreport.analyse as analyse
import kmallocwd.benchreport.keyfigures as keyfigures
from .model import BASELINE, Run


def figure_dict(run: Run, f, baseline: str) -> dict:
    r = run.ratio(f, baseline) if f.protocol is not None else None
    d = {
        "name": f.name, "kind": f.kind, "role": f.role, "protocol": f.protocol,
        "mode": f.mode, "slots": f.slots, "threads": f.threads, "ns_per_op": f.ns,
        "ns_per_op_min": f.ns_min, "ns_per_op_max": f.ns_max,
        f"ratio_to_{baseline}": None if r is None else float(f"{r:.4g}"),  # 4 significant digits
        "rounds": f.rounds, "ops_per_round": f.ops,
    }
    for key, v in (("series", f.series), ("slot_state", f.state), ("level", f.level),
                   ("aggregate_ns_per_op", f.aggregate)):
        if v is not None:
            d[key] = v
    if f.per_round:
        d["ns_per_op_rounds"] = list(f.per_round)
    for key, v in (("outcomes", f.outcomes), ("background", f.background),
                   ("params", f.params)):
        if v:
            d[key] = v
    return d


def to_dict(run: Run, baseline: str = BASELINE) -> dict:
    return {
        "file": run.path,
        "datetime": run.datetime,
        "machine": run.machine,
        "commit": run.commit,
        "settings": run.settings,
        "baseline": baseline,
        "modes": run.modes(),
        "warnings": run.warnings,
        "key_figures": [{"mode": mode, "key": k.key, "label": k.label, "value": k.value,
                         "unit": k.unit, "detail": k.detail}
                        for mode in run.modes()
                        for k in keyfigures.key_figures(run, baseline, mode)],
        "targets": [{"key": t.key, "label": t.label, "value": t.value, "limit": t.limit,
                     "met": t.met, "detail": t.detail}
                    for t in keyfigures.targets(run, baseline)],
        "figures": [figure_dict(run, f, baseline) for f in run.figures],
        "scan_linearity": analyse.scan_linearity(run),
        "scan_limit": analyse.scan_limit(run),
        "reference": analyse.reference(run),
        "thread_scaling": analyse.thread_scaling(run),
        "reader_vs_duty": analyse.duty(run),
        "instrumentation_overhead": analyse.instrumentation_overhead(run),
    }
