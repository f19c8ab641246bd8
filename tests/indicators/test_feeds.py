"""The feed registry: format detection, load_feed, load_feeds over files, folders and globs."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pytest

from detect.errors import InputError
from detect.indicators import feeds
from detect.indicators.feeds import FeedFormatError, detect_feed_format, load_feed, load_feeds
from detect.indicators.model import INDICATOR_SCHEMA, FeedOptions

SAMPLES = {
    "list.txt": ("1.2.3.4\nevil.com\n", "plain"),
    "typed.csv": ("type,value\nip,1.2.3.4\n", "csv"),
    "intel.dat": ("#fields\tindicator\tindicator_type\n1.2.3.4\tIntel::ADDR\n", "zeek-intel"),
    "rep.list": ("1.2.3.4,1,100\n", "suricata-iprep"),
    "emotet.txt": ("# Copyright (c) 2014-2026 Maltrail developers\nevil.com\n", "maltrail"),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_detect_each_format(tmp_path: Path, name: str) -> None:
    text, fmt = SAMPLES[name]
    path = tmp_path / name
    path.write_text(text)
    assert detect_feed_format(path) == fmt
    gz = tmp_path / "x.gz"  # content decides, gzip is transparent, the name does not matter
    gz.write_bytes(gzip.compress(text.encode()))
    assert detect_feed_format(gz) == fmt
    r = load_feed(path)
    assert r.indicators.num_rows >= 1 and r.problems == []
    assert r.indicators.schema == INDICATOR_SCHEMA


def test_warninglist_is_not_a_feed(tmp_path: Path) -> None:
    path = tmp_path / "list.json"
    path.write_text(json.dumps({"name": "x", "type": "cidr", "list": ["10.0.0.0/8"],
                                "matching_attributes": ["ip-src"], "version": 1}))
    with pytest.raises(FeedFormatError, match="warninglist"):
        detect_feed_format(path)


def test_unknown_file_and_format(tmp_path: Path) -> None:
    path = tmp_path / "README.md"
    path.write_text("# Title\n\nSome prose about feeds.\n")
    with pytest.raises(FeedFormatError, match="not an indicator feed"):
        detect_feed_format(path)
    with pytest.raises(FeedFormatError, match="unknown feed format"):
        load_feed(tmp_path / "README.md", fmt="yaml")
    with pytest.raises(InputError, match="no such feed"):
        load_feed(tmp_path / "missing.txt")


def test_forced_format_and_options(tmp_path: Path) -> None:
    path = tmp_path / "odd.txt"
    path.write_text("1.2.3.4\n")
    r = load_feed(path, fmt="plain", options=FeedOptions(source="mine", severity="low"))
    assert r.indicators["source"].to_pylist() == ["mine"]
    assert r.indicators["severity"].to_pylist() == ["low"]


def test_feed_source_name() -> None:
    opts = FeedOptions()
    assert feeds.feed_source(Path("threatfox_ips.txt"), opts) == "threatfox_ips"
    assert feeds.feed_source(Path("ipsum.txt.gz"), opts) == "ipsum"
    assert feeds.feed_source(Path("trails-static.tar.gz"), opts) == "trails-static"
    assert feeds.feed_source(Path("firehol_level1.netset"), opts) == "firehol_level1"
    assert feeds.feed_source(Path("my.feed.v2"), opts) == "my.feed.v2"
    assert feeds.feed_source(Path("x.txt"), FeedOptions(source="s")) == "s"


def test_load_feeds_folder_glob_and_skips(tmp_path: Path) -> None:
    folder = tmp_path / "feeds"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("1.2.3.4\n5.6.7.8\n1.1.1.1\n2.2.2.2\nbad value here\n")
    (folder / "sub" / "b.csv").write_text("type,value\ndomain,evil.com\n")
    (folder / "README.md").write_text("# notes\n\nnot a feed at all.\n")
    (folder / ".hidden").write_text("9.9.9.9\n")
    r = load_feeds([str(folder)])
    assert sorted(r.indicators["value"].to_pylist()) == [
        "1.1.1.1", "1.2.3.4", "2.2.2.2", "5.6.7.8", "evil.com"]
    assert [p.line for p in r.problems] == [5]
    assert r.skipped == {f"{feeds.DOCUMENTATION}: {folder / 'README.md'}": 1}
    r = load_feeds([str(folder / "**" / "*.csv"), str(folder / "a.txt")],
                   options_for=lambda p: FeedOptions(source=p.stem.upper()))
    assert r.indicators["source"].to_pylist() == ["B", "A", "A", "A", "A"]
    with pytest.raises(FeedFormatError):
        load_feeds([str(folder / "README.md")])  # named explicitly: an error
    with pytest.raises(InputError, match="matches no file"):
        load_feeds([str(tmp_path / "*.nothing")])


def test_load_feeds_maltrail_folder_is_one_feed(tmp_path: Path) -> None:
    root = tmp_path / "trails" / "static" / "malware"
    root.mkdir(parents=True)
    (root / "x.txt").write_text("evil.com\n")
    assert detect_feed_format(tmp_path / "trails") == "maltrail"
    r = load_feeds([str(tmp_path / "trails")])
    assert r.indicators.select(["value", "tags", "source"]).to_pylist() == [
        {"value": "evil.com", "tags": ["malware", "x"], "source": "trails"}]


def test_load_feeds_misp_folder_goes_to_misp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                              ) -> None:
    folder = tmp_path / "misp-feed"
    folder.mkdir()
    (folder / "manifest.json").write_text("{}")
    seen: list[Path] = []

    class FakeMisp:
        @staticmethod
        def load(path: Path, *, options: FeedOptions) -> feeds.LoadResult:
            seen.append(path)
            return feeds.LoadResult(INDICATOR_SCHEMA.empty_table())

    real = feeds._module
    monkeypatch.setattr(feeds, "_module", lambda fmt: FakeMisp if fmt == "misp" else real(fmt))
    load_feeds([str(folder)])
    assert seen == [folder]


def test_missing_modules_are_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(feeds.FEED_FORMATS, "nope", "detect.indicators.does_not_exist")
    assert "nope" not in feeds.available_formats()
    assert "plain" in feeds.available_formats()


def test_merge_results_adds_counts() -> None:
    a = feeds.LoadResult(INDICATOR_SCHEMA.empty_table(), [], {"x": 1})
    b = feeds.LoadResult(INDICATOR_SCHEMA.empty_table(), [], {"x": 2, "y": 1})
    merged = feeds.merge_results([a, b])
    assert merged.skipped == {"x": 3, "y": 1}
    assert isinstance(merged.indicators, pa.Table)


@pytest.mark.shared
def test_real_iocs_folder_formats(shared_datasets: Path) -> None:
    iocs = shared_datasets / "iocs"
    assert detect_feed_format(iocs / "ipsum/ipsum.txt.gz") == "plain"
    assert detect_feed_format(iocs / "abusech/threatfox_ips.txt") == "plain"
    assert detect_feed_format(iocs / "firehol/firehol_level1.netset") == "plain"
    for name in ("urlhaus_recent.csv.gz", "sslbl_sha1.csv", "sslbl_ja3_fingerprints.csv",
                 "feodotracker_ipblocklist.csv"):
        assert detect_feed_format(iocs / "abusech" / name) == "csv", name
    assert detect_feed_format(iocs / "maltrail/trails-static.tar.gz") == "maltrail"
    warninglists = shared_datasets / "warninglists"
    for path in sorted(warninglists.rglob("list.json*"))[:20]:
        with pytest.raises(FeedFormatError, match="warninglist"):
            detect_feed_format(path)


@pytest.mark.shared
def test_real_abusech_and_firehol_folders(shared_datasets: Path) -> None:
    iocs = shared_datasets / "iocs"
    r = load_feeds([str(iocs / "abusech"), str(iocs / "firehol" / "*.netset")])
    assert r.problems == []
    counts = dict(zip(*[c.to_pylist() for c in
                        r.indicators["source"].value_counts().flatten()], strict=True))
    assert counts["threatfox_ips"] == 19_863 and counts["urlhaus_recent"] == 11_125
    assert counts["sslbl_sha1"] == 5_522 and counts["sslbl_ja3_fingerprints"] == 98
    assert counts["feodotracker_ipblocklist"] == 28 and counts["firehol_level1"] == 2_744
    assert all(k.startswith(feeds.DOCUMENTATION) for k in r.skipped)  # SOURCE.md, LICENSE


def test_documentation_in_a_feed_folder_is_not_read(tmp_path: Path) -> None:
    from detect.indicators.feeds import load_feeds

    (tmp_path / "LICENSE").write_text("Copyright (c) the Maltrail developers\nsome terms\n")
    (tmp_path / "README.md").write_text("# feeds\n")
    (tmp_path / "bad.txt").write_text("evil.example\n203.0.113.9\n")
    result = load_feeds([str(tmp_path)])
    assert sorted(result.indicators.column("value").to_pylist()) == ["203.0.113.9",
                                                                     "evil.example"]
    assert result.problems == []
    assert len(result.skipped) == 2  # LICENSE and README.md, counted, not read
