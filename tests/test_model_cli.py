"""The check, litmus, replay and ablate commands."""

from __future__ import annotations

import json

import pytest


def test_check_builtin_ok(cli):
    r = cli("check", "-p", "v3")
    assert r.returncode == 0, r.stderr
    assert "Observation v3-sc-K2 Sometimes" in r.stdout
    assert "OK: every verdict equals [expect]" in r.stdout


def test_check_json(cli):
    r = cli("check", "-p", "seqcount", "--model", "weak", "--json", "-")
    doc = json.loads(r.stdout)
    assert r.returncode == 0 and doc["models"]["weak"]["verdict"] == "never"


@pytest.mark.parametrize("args,needle", [
    (["-p", "nope"], "unknown protocol 'nope'"),
    (["-p", "v3", "--model", "arm"], "--model 'arm'"),
    (["-p", "v3", "--sections", "0"], "--sections/-k: '0' is out of range (accepted: 1 to 4)"),
])
def test_check_bad_input(cli, args, needle):
    r = cli("check", *args)
    assert r.returncode == 2
    assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1


WRONG = """
format = 1
name = "claims-sound"
[writer]
section = ["sequence++", "start = NOW", "gfp = GFP", "order = ORDER", "sequence++"]
[reader]
snapshot = ["s0 = READ_ONCE(sequence)", "if (odd(s0)) retry", "smp_rmb()", "copy",
            "smp_rmb()", "s1 = READ_ONCE(sequence)", "if (s1 != s0) retry",
            "if (!snap.valid) skip"]
snapshot_sequence = "s0"
[expect]
sc = "never"
x86 = "never"
weak = "never"
[outcomes]
consistent = { expect = "acceptable", reason = "" }
"""


@pytest.mark.slow
def test_check_user_file_exit_codes(cli, tmp_path):
    f = tmp_path / "wrong.toml"
    f.write_text(WRONG)
    r = cli("check", "--protocol-file", str(f), "--no-trace")
    assert r.returncode == 1 and "FAIL" in r.stdout
    f.write_text(WRONG.replace('x86 = "never"', 'x86 = "sometimes"')
                 .replace('weak = "never"', 'weak = "sometimes"')
                 .replace('sc = "never"', 'sc = "sometimes"'))
    r = cli("check", "--protocol-file", str(f), "--no-trace")
    assert r.returncode == 3 and "INCONCLUSIVE" in r.stdout
    f.write_text("format = 1\nname = 3\n")
    r = cli("check", "--protocol-file", str(f))
    assert r.returncode == 2 and "name" in r.stderr


def test_litmus_to_file(cli, tmp_path):
    out = tmp_path / "v3.litmus"
    r = cli("litmus", "-p", "v3", "--sections", "1", "-o", str(out))
    assert r.returncode == 0 and out.read_text().startswith("C kmallocwd-v3-K1")


def test_replay_command(cli):
    pytest.importorskip("kmallocwd._kmallocwd")
    r = cli("replay", "-p", "no-rmb", "--model", "x86", "--runs", "3")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3/3 runs classified" in r.stdout and "reproduced" in r.stdout


@pytest.mark.slow
def test_ablate_command(cli):
    r = cli("ablate", "-p", "seqcount")
    assert r.returncode == 0
    assert "    12  smp_wmb()" in r.stdout and "    33  smp_rmb()" in r.stdout
    r = cli("ablate", "-p", "seqcount", "--json", "-", "--model", "sc")
    assert json.loads(r.stdout)["rows"][1]["line"] == 12
