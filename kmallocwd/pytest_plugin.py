"""The pytest plugin (entry point ``pytest11``): a ``kmallocwd`` fixture for
protocol tests.

    import pytest

    @pytest.mark.kmallocwd(duration=5, alloc_ns=100, hold_ns=50)
    def test_my_protocol(kmallocwd):
        kmallocwd.check("my.toml").assert_no_forbidden()
        kmallocwd.stress("my.toml").assert_no_forbidden()

The fixture is the ``kmallocwd`` package with the session's settings applied:
``stress``, ``check`` and ``ablate`` take the API's defaults, a protocol
file's path is relative to the test file, and every other name
(``kmallocwd.ProtocolFailure``, ``kmallocwd.__version__``) is the package's.

Settings: ``--kmallocwd-duration-scale X`` / ini ``kmallocwd_duration_scale``
multiplies every stress duration; ``--kmallocwd-seed N`` / ini
``kmallocwd_seed`` sets the seed of every stress run; the ``kmallocwd``
marker gives one test's defaults (``duration``, ``model``, and any knob of
``kmallocwd.stress``: ``alloc_ns``, ``hold_ns``, ``threads``, ...).  Each
call records its evidence as JUnit properties: per testcase under xunit1
(``record_property``), as the suite's properties named after the test under
xunit2 (``record_testsuite_property``), so ``-W error::pytest.PytestWarning``
holds under both.  Loading the plugin imports nothing heavy: numpy and the C
core load when a test first runs a protocol.
"""

from __future__ import annotations

import inspect
import platform
from pathlib import Path
from typing import Any, Callable

import pytest

from kmallocwd import limits


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("kmallocwd", "kmallocwd protocol tests")
    g.addoption("--kmallocwd-duration-scale", default=None, metavar="X",
                help=f"multiply every kmallocwd stress duration by X, {limits.DURATION_SCALE.span} "
                "(default: ini kmallocwd_duration_scale, else 1)")
    g.addoption("--kmallocwd-seed", default=None, metavar="N",
                help=f"seed of every kmallocwd stress run, {limits.SEED.span} (default: ini "
                "kmallocwd_seed, else each call's own)")
    parser.addini("kmallocwd_duration_scale", default=None,
                  help="multiply every kmallocwd stress duration by this (default 1)")
    parser.addini("kmallocwd_seed", default=None,
                  help="seed of every kmallocwd stress run (default: each call's own)")


def _setting(config: pytest.Config, option: str, ini: str,
             check: Callable[[str], Any]) -> Any:
    """The option's value, else the ini value's, checked; None if neither."""
    raw, where = config.getoption(option), option
    if raw is None:
        raw, where = config.getini(ini), f"ini {ini} ="
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    try:
        return check(str(raw).strip())
    except ValueError as exc:
        raise pytest.UsageError(f"{where} {exc}") from None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "kmallocwd(duration=None, model=None, **knobs): this test's defaults for "
        "the kmallocwd fixture's stress/check/ablate calls (any keyword of kmallocwd.stress, "
        "check or ablate; a call's own arguments win)")
    scale = _setting(config, "--kmallocwd-duration-scale", "kmallocwd_duration_scale",
                     limits.DURATION_SCALE.parse)
    seed = _setting(config, "--kmallocwd-seed", "kmallocwd_seed", limits.SEED.parse)
    config._kmallocwd_settings = (1.0 if scale is None else scale, seed)  # type: ignore[attr-defined]


def _signature(fn: Callable) -> dict[str, inspect.Parameter]:
    return {k: p for k, p in inspect.signature(fn).parameters.items()
            if p.kind == p.KEYWORD_ONLY or k == "protocol"}


class KmallocwdFixture:
    """The ``kmallocwd`` package as a test sees it: ``stress``, ``check`` and
    ``ablate`` with the session's duration scale and seed, the test's
    ``kmallocwd`` marker and protocol paths relative to the test file;
    ``reports`` holds every report; any other attribute is the package's
    (``ProtocolFailure``, ``StressReport``, ``__version__``)."""

    def __init__(self, scale: float, seed: int | None, marks: dict[str, Any], base: Path,
                 record: Callable[[str, object], None]) -> None:
        self.scale = scale
        self.seed = seed
        self.marks = marks
        self.base = base
        self._record = record
        self.reports: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        import kmallocwd as package

        return getattr(package, name)

    def __dir__(self) -> list[str]:
        import kmallocwd as package

        return sorted(set(dir(package)) | {"stress", "check", "ablate", "reports", "scale",
                                           "seed", "marks"})

    def _protocol(self, protocol: Any) -> Any:
        """A built-in's name as is; a path relative to the test file."""
        from kmallocwd import protocols

        if not isinstance(protocol, (str, Path)) or str(protocol) in protocols.BY_NAME:
            return protocol
        path = Path(protocol)
        if not path.is_absolute():
            path = self.base / path
        if not path.exists():
            raise protocols.SpecError(
                f"protocol {str(protocol)!r}: no such built-in, and no file {path} (accepted: "
                f"{', '.join(protocols.NAMES)}, or a protocol file's path, relative to the "
                "test file)")
        return protocols.load_path(path, option="protocol file")

    def _args(self, fn: Callable, given: dict[str, Any]) -> dict[str, Any]:
        params = _signature(fn)
        kw = {k: v for k, v in self.marks.items() if k in params}
        kw.update(given)
        return kw

    def _note(self, prefix: str, props: dict[str, object]) -> None:
        for k, v in props.items():
            if v is not None:
                self._record(f"kmallocwd.{prefix}.{k}", v)

    def stress(self, protocol: Any = None, **kw: Any):
        """kmallocwd.stress with this session's settings (the same defaults)."""
        from kmallocwd import api
        from kmallocwd.junit import value

        kw = self._args(api.stress, kw)
        if kw.get("iterations") is None:
            d = kw.get("duration", _signature(api.stress)["duration"].default)
            if d is not None:
                kw["duration"] = max(float(d) * self.scale, 1e-3)
        if self.seed is not None:
            kw["seed"] = self.seed
        if protocol is not None:
            kw["protocol"] = self._protocol(protocol)
        elif "protocol" in self.marks:
            kw["protocol"] = self._protocol(self.marks["protocol"])
        r = api.stress(**kw)
        self.reports.append(r)
        props: dict[str, object] = {
            "protocol": r.protocol, "result": r.result, "seed": r.config["seed"],
            "duration": r.config["duration"], "cpu": r.machine["cpu"],
            "machine": platform.node(), "kmallocwd": r.kmallocwd, "accepted": r.accepted,
            "torn": r.torn, "overlaps": r.overlaps, "tear_bound_95": r.tear_bound_95,
            **{f"count.{k}": o["count"] for k, o in r.outcomes.items()}}
        if r.first_torn:
            props["first_torn"] = value(r.first_torn)
        self._note("stress", props)
        return r

    def check(self, protocol: Any = None, **kw: Any):
        """kmallocwd.check (the same defaults; protocol paths relative to the test)."""
        from kmallocwd import api

        kw = self._args(api.check, kw)
        if protocol is not None or "protocol" in self.marks:
            kw["protocol"] = self._protocol(protocol if protocol is not None
                                            else self.marks["protocol"])
        r = api.check(**kw)
        self.reports.append(r)
        self._note("check", {"protocol": r.protocol, **{
            f"{m}.verdict": v["verdict"] for m, v in r.models.items()}})
        return r

    def ablate(self, protocol: Any = None, **kw: Any):
        """kmallocwd.ablate (the same defaults: seqcount, model only), its
        stress duration scaled."""
        from kmallocwd import api

        kw = self._args(api.ablate, kw)
        if "duration" in kw:
            kw["duration"] = float(kw["duration"]) * self.scale
        if protocol is not None or "protocol" in self.marks:
            kw["protocol"] = self._protocol(protocol if protocol is not None
                                            else self.marks["protocol"])
        r = api.ablate(**kw)
        self.reports.append(r)
        self._note("ablate", {"protocol": r.protocol, "variants": len(r.rows)})
        return r


_SETTINGS = ("protocol", "duration", "model")


def _recorder(request: pytest.FixtureRequest) -> Callable[[str, object], None]:
    """record_property under xunit1 (per testcase); under xunit2, whose
    testcases hold no properties, the suite's, named after the test."""
    from kmallocwd.junit import value

    cfg = request.config
    try:
        family = cfg.getini("junit_family")
    except ValueError:  # junitxml disabled
        family = "xunit1"
    if getattr(cfg.option, "xmlpath", None) and family not in ("xunit1", "legacy"):
        suite = request.getfixturevalue("record_testsuite_property")
        nodeid = request.node.nodeid
        return lambda k, v: suite(f"{nodeid}::{k}", value(v))
    try:
        prop = request.getfixturevalue("record_property")
    except pytest.FixtureLookupError:  # -p no:junitxml: what record_property does
        return lambda k, v: request.node.user_properties.append((k, value(v)))
    return lambda k, v: prop(k, value(v))


@pytest.fixture
def kmallocwd(request: pytest.FixtureRequest) -> KmallocwdFixture:
    """The kmallocwd package with this session's settings: ``kmallocwd.stress``,
    ``kmallocwd.check`` and ``kmallocwd.ablate`` return reports whose
    ``assert_no_forbidden()`` raises ``kmallocwd.ProtocolFailure`` with the
    evidence.  Stress durations are multiplied by --kmallocwd-duration-scale
    (ini kmallocwd_duration_scale), the seed is --kmallocwd-seed (ini
    kmallocwd_seed), @pytest.mark.kmallocwd(duration=..., model=..., knobs...)
    sets this test's defaults, a protocol file's path is relative to the test
    file, and each call's evidence becomes JUnit properties."""
    from kmallocwd import api

    scale, seed = getattr(request.config, "_kmallocwd_settings", (1.0, None))
    marker = request.node.get_closest_marker("kmallocwd")
    marks = dict(marker.kwargs) if marker is not None else {}
    known = set(_SETTINGS)
    for fn in (api.stress, api.check, api.ablate):
        known |= set(_signature(fn))
    unknown = sorted(set(marks) - known - {"on_run", "on_row"})
    if unknown or (marker is not None and marker.args):
        bad = ", ".join(unknown) or repr(marker.args)
        pytest.fail(f"@pytest.mark.kmallocwd: {bad}: not a setting (accepted: keywords "
                    f"{', '.join(sorted(known))})", pytrace=False)
    path = getattr(request, "path", None) or Path(str(request.fspath))
    return KmallocwdFixture(scale, seed, marks, Path(path).parent, _recorder(request))
