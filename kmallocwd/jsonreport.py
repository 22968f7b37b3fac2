"""A command's JSON document as a dataclass: the fields are the keys; the
fields named in ``_INTERNAL`` are kept for Python callers and left out of
the JSON.  A leaf module: the reports of stress, check, ablate and
campaign share it."""

from __future__ import annotations

import json
from dataclasses import asdict


class JsonReport:
    _INTERNAL: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        d = asdict(self)  # type: ignore[call-overload]
        for k in self._INTERNAL:
            d.pop(k)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, default=str) + "\n"
