"""Every command has help text with an example; usage errors exit 2 without a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from detect import __version__
from detect.cli import cli, main

COMMANDS = sorted(cli.commands)


def test_commands_exist() -> None:
    assert {"run", "match", "alerts", "validate", "generate"} <= set(COMMANDS)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_help_has_an_example(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Examples:" in result.output
    assert f"detect {name}" in result.output


def test_group_help_lists_exit_codes() -> None:
    result = CliRunner().invoke(cli, ["-h"])
    assert result.exit_code == 0
    assert "Exit codes" in result.output


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert __version__ in capsys.readouterr().out


def test_unknown_option_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--no-such-flag", "x"]) == 2
    err = capsys.readouterr().err
    assert "No such option" in err
    assert "Traceback" not in err


def test_bad_setting_value_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "x", "--batch-size", "0"]) == 2
    assert "batch_size must be" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "{log}", "--db", "{db}", "--rules", "{missing}"],
        ["validate", "--rules", "{missing}"],
        ["rules", "list", "--rules", "{missing}"],
    ],
)
def test_a_rules_path_that_does_not_exist_exits_2(
    argv: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "no_such_rules")
    log = Path(__file__).parents[2] / "data" / "samples" / "zeek" / "conn.log"
    args = [a.format(db=tmp_path / "a.duckdb", missing=missing, log=log) for a in argv]
    assert main(args) == 2  # a typo must not run without rules and exit 0
    err = capsys.readouterr().err
    assert "no such rule file or folder" in err
    assert missing in err
    assert "Traceback" not in err


def test_a_run_with_nothing_to_detect_with_exits_2_and_records_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    log = Path(__file__).parents[2] / "data" / "samples" / "zeek" / "conn.log"
    db = tmp_path / "a.duckdb"
    args = ["run", str(log), "--db", str(db), "--rules", str(empty), "--indicators", str(empty)]
    assert main(args) == 2  # else the log is recorded as done and a later run skips it
    assert "nothing to detect with" in capsys.readouterr().err
    assert not db.exists()
