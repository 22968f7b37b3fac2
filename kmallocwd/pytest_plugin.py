"""The pytest plugin (entry point ``pytest11``): a ``kmallocwd`` fixture for
protocol tests.

    def test_my_protocol(kmallocwd):
        kmallocwd.check("my.toml").assert_no_forbidden()
        kmallocwd.stress("my.toml", duration=5).assert_no_forbidden()

Options: ``--kmallocwd-duration-scale X`` multiplies every stress duration
(CI: shorter or longer runs without editing tests), ``--kmallocwd-seed N``
sets the seed.  Each call records JUnit properties (``record_property``):
the counts, the overlaps, the seed, the CPU and the first torn snapshot.
Loading the plugin imports nothing heavy: numpy and the C core load when a
test first calls the fixture.
"""

from __future__ import annotations

from typing import Any

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("kmallocwd", "kmallocwd protocol tests")
    g.addoption("--kmallocwd-duration-scale", type=float, default=1.0, metavar="X",
                help="multiply every kmallocwd stress duration by X (default 1)")
    g.addoption("--kmallocwd-seed", type=int, default=None, metavar="N",
                help="seed of every kmallocwd stress run (default: each call's own)")


def pytest_configure(config: pytest.Config) -> None:
    scale = config.getoption("--kmallocwd-duration-scale")
    if not scale > 0:
        raise pytest.UsageError(f"--kmallocwd-duration-scale {scale}: out of range "
                                "(accepted: more than 0)")


class KmallocwdFixture:
    """What the ``kmallocwd`` fixture gives a test: the API with the
    session's duration scale and seed applied, and every report recorded."""

    def __init__(self, scale: float, seed: int | None, record) -> None:
        self.scale = scale
        self.seed = seed
        self._record = record
        self.reports: list[Any] = []

    def _note(self, prefix: str, props: dict[str, object]) -> None:
        for k, v in props.items():
            self._record(f"kmallocwd.{prefix}.{k}", v)

    def stress(self, protocol: str = "v3", duration: float | None = 5.0, **kw: Any):
        from kmallocwd import api

        if duration is not None:
            duration = max(duration * self.scale, 1e-3)
        if self.seed is not None:
            kw["seed"] = self.seed
        r = api.stress(protocol, duration=duration, **kw)
        self.reports.append(r)
        props: dict[str, object] = {
            "protocol": r.protocol, "result": r.result, "seed": r.config["seed"],
            "duration": r.config["duration"], "cpu": r.machine["cpu"], "accepted": r.accepted,
            "torn": r.torn, "overlaps": r.overlaps, "tear_bound_95": r.tear_bound_95,
            **{f"count.{k}": o["count"] for k, o in r.outcomes.items()}}
        if r.first_torn:
            props["first_torn"] = f"{r.first_torn['kind']} {r.first_torn['snapshot']}"
        self._note("stress", props)
        return r

    def check(self, protocol: str = "v3", **kw: Any):
        from kmallocwd import api

        r = api.check(protocol, **kw)
        self.reports.append(r)
        self._note("check", {"protocol": r.protocol, **{
            f"{m}.verdict": v["verdict"] for m, v in r.models.items()}})
        return r

    def ablate(self, protocol: str = "v3", duration: float = 0.0, **kw: Any):
        from kmallocwd import api

        r = api.ablate(protocol, duration=duration * self.scale, **kw)
        self.reports.append(r)
        self._note("ablate", {"protocol": r.protocol, "variants": len(r.rows)})
        return r


@pytest.fixture
def kmallocwd(request: pytest.FixtureRequest, record_property) -> KmallocwdFixture:
    cfg = request.config
    return KmallocwdFixture(cfg.getoption("--kmallocwd-duration-scale"),
                            cfg.getoption("--kmallocwd-seed"), record_property)
