"""Settings precedence: detect.toml < DETECT_* < flags, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from detect.config import load_settings
from detect.errors import ConfigError


def test_file_then_environment_then_flags(tmp_path: Path) -> None:
    cfg = tmp_path / "detect.toml"
    cfg.write_text('db = "hub.duckdb"\nbatch_size = 10\nthreads = 3\nrules = ["r1", "/abs/r2"]\n')
    s = load_settings(config=cfg, environ={"DETECT_BATCH_SIZE": "20"}, flags={"threads": 4})
    assert s.db == tmp_path / "hub.duckdb"  # relative to the file
    assert s.rules == (str(tmp_path / "r1"), "/abs/r2")
    assert s.batch_size == 20
    assert s.threads == 4
    assert s.source["db"] == str(cfg)
    assert s.source["batch_size"] == "$DETECT_BATCH_SIZE"
    assert s.source["threads"] == "flag"


def test_environment_lists_use_the_path_separator() -> None:
    s = load_settings(environ={"DETECT_INDICATORS": "a:b", "DETECT_REPROCESS": "yes"})
    assert s.indicators == ("a", "b")
    assert s.reprocess is True


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("batch_size = 0\n", "batch_size must be"),
        ("bogus = 1\n", "unknown setting 'bogus'"),
        ("threads = 'many'\n", "'threads' has a bad value"),
        ("fail_on = 'severe'\n", "fail_on must be one of"),
        ("db = [\n", "invalid TOML"),
    ],
)
def test_bad_settings_name_the_setting(tmp_path: Path, text: str, fragment: str) -> None:
    cfg = tmp_path / "detect.toml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=fragment):
        load_settings(config=cfg, environ={})


def test_missing_config_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(config=tmp_path / "nope.toml", environ={})


def test_rule_files_skip_test_event_folders(tmp_path: Path) -> None:
    from detect.engines import rule_files

    (tmp_path / "tests").mkdir()
    (tmp_path / "a.yml").write_text("title: a\n")
    (tmp_path / "tests" / "a.yml").write_text("positive: []\n")
    assert rule_files((str(tmp_path),)) == [tmp_path / "a.yml"]
    assert rule_files((str(tmp_path / "tests" / "a.yml"),)) == [tmp_path / "tests" / "a.yml"]


def test_correlations_are_cached_beside_the_sigma_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from detect.anomaly import correlation
    from detect.config import bundled
    from detect.engines import correlations, rule_files
    from detect.sigma import load_sigma

    files = rule_files((str(bundled("rules")),))
    first = correlations(load_sigma(files), files, cache_dir=tmp_path)
    assert first is not None and first[0].plans

    def no_parsing(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed again")

    monkeypatch.setattr(correlation, "parse_correlation_rules", no_parsing)
    sigma = load_sigma(files)
    again = correlations(sigma, files, cache_dir=tmp_path)
    assert again is not None
    assert [p.rule_id for p in again[0].plans] == [p.rule_id for p in first[0].plans]
    assert again[1] == first[1]  # alert metadata too
    assert sigma.silenced == sorted(again[0].suppressed_base_rules)  # still applied
    (tmp_path / "sigma").rename(tmp_path / "gone")  # no cache: parsed (and so fails here)
    with pytest.raises(AssertionError, match="parsed again"):
        correlations(load_sigma(files), files, cache_dir=tmp_path)
