"""A campaign's CI findings (kmallocwd.annotate): for each protocol with
FAIL or UNOBSERVED cells, the line of its protocol file that the model
checker blames (when the file sits where the plan names it), then one
finding at the plan's line naming the protocol, with the cells and the
forbidden outcomes seen."""

from __future__ import annotations

import os

from kmallocwd.annotate import Finding, blame_findings
from kmallocwd.verdicts import Result

_WORDS = {r.cell: str(r) for r in (Result.FAIL, Result.UNOBSERVED)}


def _plan_line(text: str, name: str) -> int:
    for i, ln in enumerate(text.splitlines(), 1):
        if f'"{name}' in ln or f"'{name}" in ln:
            return i
    return 0


def _protocol_file(plan, label: str, text: str):
    """The protocol file a cell's label names, as a Spec at its path (None
    for a built-in, or when the file beside the plan is not that text)."""
    from kmallocwd import protocols

    stem = label.rsplit("@", 1)[0]
    path = os.path.join(os.path.dirname(plan.path), stem + ".toml")
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() != text:
                return None
        return protocols.load_path(path)
    except (OSError, UnicodeDecodeError, protocols.SpecError):
        return None


def findings(doc: dict, plan) -> list[Finding]:
    try:
        with open(plan.path, encoding="utf-8") as f:
            plan_text = f.read()
    except (OSError, UnicodeDecodeError):
        plan_text = ""
    cells = {c.id: c for c in plan.cells}
    total = len(plan.cells)
    out_blame: list[Finding] = []
    out_plan: list[Finding] = []
    for verdict in ("forbidden", "unobserved"):
        by_proto: dict[str, list[dict]] = {}
        for rec in doc["cells"]:
            if rec.get("verdict") == verdict:
                by_proto.setdefault(rec.get("protocol") or "?", []).append(rec)
        for proto, recs in by_proto.items():
            word = _WORDS[verdict]
            cell = cells.get(recs[0]["id"])
            text = (cell.files or {}).get(proto) if cell is not None else None
            spec = _protocol_file(plan, proto, text) if text else None
            if spec is not None and not any(f.path == spec.path for f in out_blame):
                from kmallocwd.model import MODELS, explore

                out_blame += blame_findings([explore(spec, m, 2) for m in MODELS], spec.path,
                                            every_tear=True)
            seen: dict[str, int] = {}
            for r in recs:
                for name in r.get("forbidden") or []:
                    seen[name] = seen.get(name, 0) + int((r.get("counts") or {}).get(name, 0))
            name = proto.rsplit("@", 1)[0]
            what = ("forbidden outcome seen" if verdict == "forbidden" else
                    "the tear the model predicts was not observed")
            msg = f"{word}: {what} in {len(recs)} of {total} cells of {name}"
            if seen:
                msg += ": " + ", ".join(f"{n:,} {k}" for k, n in seen.items())
            body = [f"{r['id']} on {(r.get('machine') or {}).get('hostname', '?')}"
                    for r in recs]
            out_plan.append(Finding(plan.path, _plan_line(plan_text, name), f"{name}: {word}",
                                    msg, body))
    return out_blame + out_plan
