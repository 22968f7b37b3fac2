"""The verdict vocabularies, as enums (a leaf module): the memory models,
what a model says of a protocol (never / sometimes), and a run's result
(PASS / FAIL / INCONCLUSIVE / UNOBSERVED) with its exit status and the
word a campaign's results file records for it.  Each member is a str, so
the JSON documents and the comparisons with plain strings are unchanged."""

from __future__ import annotations

from enum import StrEnum

from kmallocwd.errors import EXIT_FORBIDDEN, EXIT_INCONCLUSIVE, EXIT_OK, EXIT_UNOBSERVED


class Model(StrEnum):
    SC = "sc"
    X86 = "x86"
    WEAK = "weak"


MODELS: tuple[Model, ...] = tuple(Model)


class ModelVerdict(StrEnum):
    """What the model checker says of a torn snapshot under one model."""

    NEVER = "never"
    SOMETIMES = "sometimes"


class Result(StrEnum):
    """A stress run's (or a campaign cell's) result."""

    PASS = "PASS"
    FAIL = "FAIL"  # a forbidden outcome seen (or a tear --expect torn wanted, missing)
    INCONCLUSIVE = "INCONCLUSIVE"  # no power
    UNOBSERVED = "UNOBSERVED"  # the model's tear, not seen

    @property
    def status(self) -> int:
        return _STATUS[self]

    @property
    def cell(self) -> str:
        """The word a campaign's results file records (schema kmallocwd.campaign/1)."""
        return _CELL[self]

    @classmethod
    def of_status(cls, status: int) -> "Result":
        return _BY_STATUS[status]


_STATUS = {Result.PASS: EXIT_OK, Result.FAIL: EXIT_FORBIDDEN,
           Result.INCONCLUSIVE: EXIT_INCONCLUSIVE, Result.UNOBSERVED: EXIT_UNOBSERVED}
_CELL = {Result.PASS: "pass", Result.FAIL: "forbidden", Result.INCONCLUSIVE: "inconclusive",
         Result.UNOBSERVED: "unobserved"}
_BY_STATUS = {v: k for k, v in _STATUS.items()}
