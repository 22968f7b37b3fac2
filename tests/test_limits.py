"""One validator per value (kmallocwd/limits.py): the Python API and campaign
plans refuse what the CLI refuses, with the CLI's message; a plan is checked
whole, and sized, when it is loaded."""

from __future__ import annotations

import re

import pytest

import kmallocwd
from kmallocwd import limits
from kmallocwd.campaign import parse_plan
from kmallocwd.cli import main

# the API's keyword, its value, and the same value given to the CLI
BAD_STRESS = [
    ("duration", 1e6, "--duration=1e6"),
    ("hold_ns", 10**15, f"--hold-ns={10**15}"),
    ("threads", -1, "--threads=-1"),
    ("repeat", 0, "--repeat=0"),
    ("duration", float("inf"), "--duration=inf"),
    ("preempt", 2, "--preempt=2"),
    ("seed", 2**64, f"--seed={2**64}"),
    ("min_overlaps", -1, "--min-overlaps=-1"),
    ("expect", "bogus", "--expect=bogus"),
    ("slots", 2**40, f"--slots={2**40}"),
    ("alloc_ns", 1.5, None),
]


def _accepted(msg: str) -> str:
    m = re.search(r"(out of range|not a whole number|unknown \w+).*(\(accepted: [^)]*\))", msg)
    assert m, msg
    return f"{m.group(1)} {m.group(2)}"


@pytest.mark.parametrize("name,value,cli_arg", BAD_STRESS)
def test_the_api_refuses_what_the_cli_refuses_with_its_message(capsys, name, value, cli_arg):
    with pytest.raises(ValueError) as exc:
        kmallocwd.stress("v3", **{name: value})
    msg = str(exc.value)
    assert f"{name}=" in msg and "\n" not in msg, msg
    if cli_arg is None:
        return
    with pytest.raises(SystemExit) as ex:
        main(["stress", cli_arg])
    assert ex.value.code == 2
    cli_msg = capsys.readouterr().err.strip()
    assert _accepted(msg).replace("not a whole number (accepted: ", "(accepted: ") \
        .split("(accepted:")[1] == _accepted(cli_msg).split("(accepted:")[1].replace(
            "; decimal, or 0x hex", "")
    assert _accepted(msg).split(" (accepted")[0] == _accepted(cli_msg).split(" (accepted")[0]


def test_the_api_refuses_more_threads_than_slots_and_bad_model_values():
    with pytest.raises(ValueError, match=r"threads=2 is more than slots=1"):
        kmallocwd.stress("v3", threads=2, slots=1)
    with pytest.raises(ValueError, match=r"sections=9 is out of range \(accepted: 1 to 4\)"):
        kmallocwd.check("v3", sections=9)
    with pytest.raises(ValueError, match=r"duration=inf is out of range"):
        kmallocwd.ablate("v3", duration=float("inf"))


def test_one_validator_serves_the_cli_the_api_and_plans():
    # the CLI's option types and the plan's keys are the limits' objects
    from kmallocwd.campaign import plan
    assert plan.KNOBS["hold_ns"].limit is limits.HOLD_NS is limits.BY_NAME["hold_ns"]
    assert limits.SEED.parse("0x10") == 16 and limits.check("seed", 16) == 16
    with pytest.raises(ValueError, match=r"'-1' is out of range \(accepted: 0 to "):
        limits.SEED.parse("-1")          # what the pytest plugin's --kmallocwd-seed calls
    with pytest.raises(ValueError, match=r"'1e6' is out of range \(accepted: more than 0 "):
        limits.DURATION_SCALE.parse("1e6")


# ---------------------------------------------------------------- plans, at load time

BIG = "[[stress]]\nprotocols = ['v3']\nrepeats = 10000\nseeds = [" + ",".join(
    str(i) for i in range(1000)) + "]\n"

BAD_AT_LOAD = [
    ("[[check]]\nargs = ['--protocol-file', 'missing.toml']\n", "check[0].args",
     "no protocol file 'missing.toml'"),
    ("[[ablate]]\nargs = ['--protocol-file=missing.toml']\n", "ablate[0].args",
     "no protocol file 'missing.toml'"),
    ("[[check]]\nargs = ['--bogus']\n", "check[0].args", "unrecognized arguments: --bogus"),
    ("[[check]]\nargs = ['-p', 'v3', '--sections', '9']\n", "check[0].args",
     "'9' is out of range (accepted: 1 to 4)"),
    ("[[check]]\nargs = ['-p', 'v3', '-m', 'arm']\n", "check[0].args", "'arm'"),
    ("[[check]]\nargs = ['--help']\n", "check[0].args", "--help runs nothing"),
    ("[[ablate]]\nargs = ['-p', 'v3', '-d', '1e9']\n", "ablate[0].args",
     "'1e9' is out of range (accepted: 0 to 3600)"),
    ("[[stress]]\nprotocols = ['v3']\nslots = 1099511627776\n", "stress.slots",
     "1099511627776 is out of range (accepted: 1 to 268435456)"),
    ("[[stress]]\nprotocols = ['v3']\ntimeout_s = 1e-300\n", "stress.timeout_s",
     "out of range (accepted: 1 to 604800 seconds)"),
    ("[campaign]\ntimeout_s = 5\n[[stress]]\nprotocols = ['v3']\ndurations = 10\n",
     "campaign.timeout_s", "not more than the duration 10 s"),
    ("[[stress]]\nprotocols = ['bad.toml']\n", "stress.protocols", "garbage: unknown key"),
    (BIG, "stress", "10000000 cells (1 protocols x 1 threads x 1 slots x 1 durations x "
     "1000 seeds x 10000 repeats) (accepted: at most 100000 cells in a plan)"),
    ("[[stress]]\nprotocols = ['v3']\n[stress.knobs]\nhold_ns = 1000000000000000\n",
     "stress.knobs.hold_ns", "out of range (accepted: 0 to 1000000000)"),
]


@pytest.mark.parametrize("text,key,needle", BAD_AT_LOAD)
def test_a_plan_is_refused_at_load_in_one_line(tmp_path, capsys, text, key, needle):
    (tmp_path / "bad.toml").write_text("garbage = 1\n")
    plan = tmp_path / "plan.toml"
    plan.write_text(text)
    assert main(["campaign", str(plan), "--dry-run"]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert key in lines[0] and needle in lines[0], lines[0]


def test_a_huge_plan_is_sized_before_it_is_expanded(monkeypatch):
    """10 million cells are refused without making one (Cell is never built)."""
    from kmallocwd.campaign import plan as plan_mod

    def no_cell(*a, **kw):
        raise AssertionError("a cell was made")

    monkeypatch.setattr(plan_mod, "Cell", no_cell)
    with pytest.raises(kmallocwd.campaign.plan.UsageError, match="10000000 cells"):
        parse_plan(BIG, "big.toml")
    assert len(BIG) < 4096
