"""The model checker (issue 10): every execution of K write sections by one
writer against one reader attempt, under sequential consistency, x86-TSO
with a compiler's transformations of plain accesses, and an arm64/POWER-class
weak model that agrees with the LKMM on these shapes.  docs/model.md says
what each model allows and how agreement with the LKMM was checked.

Pure Python: nothing here needs the C extension (replay does)."""

from kmallocwd.model.events import MODEL_TITLES, MODELS, SC, WEAK, X86  # noqa: F401
from kmallocwd.model.explore import Exploration, explore, torn_condition  # noqa: F401
