"""What the model checker blames under some models, as text: the line
where a fence is missing (or the [expect] line) and the shortest
counterexample as its numbered trace.  The stress and ablate reports put
it in their failure messages."""

from __future__ import annotations

from kmallocwd.model.blame import blame
from kmallocwd.model.explore import explore


def counterexample_text(spec, models: list[str], sections: int = 2) -> str:
    """'' when no model finds a tear (or ``models`` is empty)."""
    if not models:
        return ""
    found = blame([explore(spec, m, sections) for m in models], every_tear=True)
    if not found:
        return ""
    lines = [f"model checker: {spec.path or spec.name}:{b.line}: {b.message}" for b in found]
    return "\n".join(lines + found[0].trace)
