"""Detector configuration files: the bundled ones load; mistakes name file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from detect.anomaly.config import DETECTORS, load_detector_configs, parse_detector_file
from detect.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_bundled_detector_files_load_and_build() -> None:
    configs = load_detector_configs([ROOT / "rules"])
    assert {c.detector for c in configs} >= {"beacon", "dns", "scan", "long_conn", "volume"}
    for config in configs:
        assert config.detector in DETECTORS
        detector = config.build()
        assert detector.select is not None and detector.run is not None


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        (
            "detector: scan\nparams:\n  window: 30\n  vertical_treshold: 5\n",
            4,
            ["params.vertical_treshold", "unknown parameter", "vertical_threshold"],
        ),
        ("detector: scan\nparams:\n  window: thirty\n", 3, ["params.window", "expected"]),
        ("detector: scna\n", 1, ["detector", "unknown detector 'scna'", "scan"]),
        ("detector: scan\nenable: false\n", 2, ["enable", "unknown key"]),
        ("detector: scan\nenabled: maybe\n", 2, ["enabled", "true or false"]),
        (
            "detector: beacon\nparams:\n  internal_subnets: 10.0.0.0/8\n",
            3,
            ["params.internal_subnets", "expected"],
        ),
        ("detector: [scan\n", 2, ["not valid YAML"]),  # YAML notices at the end
    ],
)
def test_mistakes_name_file_line_and_key(
    tmp_path: Path, text: str, line: int, words: list[str]
) -> None:
    path = tmp_path / "anomaly" / "bad.yml"
    path.parent.mkdir()
    path.write_text(text)
    with pytest.raises(ConfigError) as e:
        parse_detector_file(path)
    message = str(e.value)
    assert message.startswith(f"{path}:{line}:"), message
    for word in words:
        assert word in message


def test_ids_unique_disabled_skipped_lists_become_tuples(tmp_path: Path) -> None:
    folder = tmp_path / "anomaly"
    folder.mkdir()
    (folder / "a.yml").write_text("detector: scan\nid: scans\n")
    (folder / "b.yml").write_text("detector: scan\nid: scans\n")
    with pytest.raises(ConfigError, match="already used"):
        load_detector_configs([tmp_path])
    (folder / "b.yml").write_text(
        "detector: scan\nid: sweeps\nenabled: false\nparams:\n  horizontal_ports: [22, 23]\n"
    )
    configs = load_detector_configs([tmp_path])
    assert [c.key for c in configs] == ["scans"]
    config = parse_detector_file(folder / "b.yml")
    assert config.params["horizontal_ports"] == (22, 23)
    assert config.build().params.horizontal_ports == (22, 23)
