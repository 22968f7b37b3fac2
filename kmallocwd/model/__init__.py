"""The model checker: every execution of K write sections by one
writer against one reader attempt, under sequential consistency, x86-TSO
with a compiler's transformations of plain accesses, and an arm64/POWER-class
weak model that agrees with the LKMM on these shapes.  docs/model.md says
what each model allows and how agreement with the LKMM was checked.

Pure Python: nothing here needs the C extension (replay does)."""

from kmallocwd.model.events import MODEL_TITLES, MODELS, SC, WEAK, X86  # noqa: F401
from kmallocwd.model.explore import Exploration, explore, torn_condition  # noqa: F401

from kmallocwd.verdicts import ModelVerdict  # noqa: E402

_CACHE: dict = {}


def verdicts(spec, sections: int = 2, models=MODELS) -> dict:
    """``{model: 'never' | 'sometimes'}`` for a protocol, computed (and
    cached per file text): what `kmallocwd protocols` and stress can show
    next to [expect] instead of a hand-typed column."""
    key = (spec.name, spec.path, spec.source, tuple(spec.section), tuple(spec.prologue),
           tuple(spec.snapshot), sections, tuple(models))
    if key not in _CACHE:
        _CACHE[key] = {m: (ModelVerdict.SOMETIMES if explore(spec, m, sections).sometimes
                           else ModelVerdict.NEVER)
                       for m in models}
    return dict(_CACHE[key])
