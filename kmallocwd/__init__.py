"""kmallocwd: a real-concurrency emulator of the Linux memory allocation
watchdog (the 2015 kmallocwd patch) and of the lock-free seqcount it uses.

The Python API (kmallocwd/api.py) is what the CLI runs:

    import kmallocwd
    kmallocwd.stress("seqcount", duration=5, alloc_ns=100).assert_no_forbidden()
    kmallocwd.check("my.toml").assert_no_forbidden()

It loads lazily: importing this package loads neither numpy nor the C core.
"""

__version__ = "0.1.0"

_API = ("stress", "check", "ablate", "ProtocolFailure", "StressReport", "CheckReport",
        "AblateReport")


def __getattr__(name: str):
    if name in _API:
        from kmallocwd import api
        return getattr(api, name)
    raise AttributeError(f"module 'kmallocwd' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + list(_API))
