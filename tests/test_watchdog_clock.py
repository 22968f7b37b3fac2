"""The machine's logical clock: time advances by the model's events only, so
--time-scale scales every wait and a run's outcome does not change with
the scale, nor with how busy the host is."""

from __future__ import annotations

import threading
import time

import pytest

from kmallocwd.watchdog.vclock import VEvent, VirtualClock

from conftest import run_json


def run_on(clock: VirtualClock, *bodies) -> None:
    """Each body on a thread of the emulated machine, started while this
    thread holds its CPU; returns when all are done."""
    threads = [threading.Thread(target=f) for f in bodies]
    clock.boot()  # this thread has the CPU while it starts them
    for th in threads:
        clock.enter(th)
        th.start()
    clock.leave()
    for th in threads:
        th.join(30)

def test_time_stands_still_while_a_thread_runs_and_jumps_when_all_sleep():
    clock = VirtualClock()
    ev = VEvent(clock)
    seen: dict[str, int] = {}

    def sleeper() -> None:
        clock.begin()
        try:
            ev.wait(5.0)  # five emulated seconds
            seen["sleeper"] = clock.now_ns()
        finally:
            clock.leave()

    def busy() -> None:
        clock.begin()
        try:
            time.sleep(0.2)  # host time: costs the machine nothing
            seen["busy"] = clock.now_ns()
            ev.wait(1.0)
            seen["busy_after"] = clock.now_ns()
        finally:
            clock.leave()

    run_on(clock, *(sleeper, busy))
    assert seen["busy"] == 0  # 0.2 s of host time went by; the machine's clock did not move
    assert seen["busy_after"] == 1_000_000_000  # then it jumped to the earliest timeout
    assert seen["sleeper"] == 5_000_000_000  # and to the next one


def test_set_wakes_a_sleeper_before_its_timeout():
    clock = VirtualClock()
    ev, other = VEvent(clock), VEvent(clock)
    out: dict[str, object] = {}

    def sleeper() -> None:
        clock.begin()
        try:
            out["woken"] = ev.wait(10.0)
            out["at"] = clock.now_ns()
        finally:
            clock.leave()

    def waker() -> None:
        clock.begin()
        try:
            other.wait(2.0)
            ev.set()
        finally:
            clock.leave()

    run_on(clock, *(sleeper, waker))
    assert out == {"woken": True, "at": 2_000_000_000}


def outcome(scenario: str, seed: int, scale: float, timeout: float, duration: float):
    recs = run_json("--scenario", scenario, "--seed", str(seed), "--timeout", str(timeout),
                    "--time-scale", str(scale), "--duration", str(duration))
    s = recs[-1]
    # per report: how many tasks were dying, whether a victim was listed, and
    # how many stalled (but the first report's: the tasks whose request began
    # within one jiffy of the first stall's, and a jiffy is twice as long, in
    # the scenario's time, at the smaller scale)
    reports = [(r["dying"], r["victim"], r["stalling"] if r["n"] > 1 else None)
               for r in s["reports"]]
    times = [r["time"] / scale for r in s["reports"]]  # in the scenario's own seconds
    victims = [(v["comm"], v["pid"], round(v["time"] / scale, 2)) for v in s["oom_victims"]]
    return (s["classification"], reports, victims), times


# (scenario, seed, scale, duration): each run again with every time doubled (the scale,
# the watchdog timeout, the duration) is the same machine, twice as slow.
CASES = [("overload", 1, 0.03, 1.0), ("reclaim-livelock", 2, 0.5, 1.0),
         ("oom-livelock", 1, 0.25, 2.0), ("no-oom-possible", 3, 0.03, 1.0)]


@pytest.mark.parametrize("scenario,seed,scale,duration", CASES)
@pytest.mark.slow
def test_classification_and_report_counts_are_the_same_at_two_scales(scenario, seed, scale,
                                                                     duration):
    a, at = outcome(scenario, seed, scale, 0.3, duration)
    b, bt = outcome(scenario, seed, 2 * scale, 0.6, 2 * duration)
    assert a[0] != "quiet" and a[1], a  # something to compare: reports were made
    assert a == b
    # each report at the same moment of the scenario, to a jiffy of the smaller scale
    assert all(abs(x - y) <= 0.0011 / scale for x, y in zip(at, bt)), (at, bt)
