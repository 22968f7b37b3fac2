"""Every error the library raises for the CLI shares one base class, and
the CLI maps it to the exit status in one place: the class's exit_code,
with its message as one line on stderr."""

from __future__ import annotations

import pytest

from kmallocwd.cli.commands import stress_cmd
from kmallocwd.cli.main import main
from kmallocwd.errors import InstallError, KmallocwdError, Unavailable, UsageError, WriteFailed


@pytest.mark.parametrize("error, status", [(UsageError, 2), (Unavailable, 69),
                                           (InstallError, 69), (WriteFailed, 74)])
def test_a_library_error_is_its_exit_code_and_one_line(monkeypatch, capsys, error, status):
    def fail(args):
        raise error("what went wrong\nand a second line")

    monkeypatch.setattr(stress_cmd, "run", fail)
    assert issubclass(error, KmallocwdError)
    assert main(["stress", "-d", "1"]) == status
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("kmallocwd stress: error: what went wrong")

