"""Generic readers (Parquet, Arrow IPC, CSV, NDJSON): mapping, sniffing, rejects, batch bounds."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from detect.errors import InputError
from detect.readers import detect_format, expand_inputs, read_file
from detect.readers.base import Reject
from detect.schema import CANONICAL_SCHEMA

ROWS = {
    "@timestamp": ["2024-01-01T00:00:00Z", "2024-01-01T00:00:01+0000", "2024-01-01 00:00:02"],
    "source.ip": ["10.0.0.1", "2001:db8::1", "10.0.0.3"],
    "destination.port": ["53", "443", "80"],
    "dns.question.name": ["a.example.com", None, "b.example.org"],
    "not.canonical": ["x", "y", "z"],
}
EXPECTED_TS = [datetime(2024, 1, 1, 0, 0, s, tzinfo=UTC) for s in range(3)]


def _read(path: Path, **kw) -> tuple[pa.Table, list[Reject]]:
    rejects: list[Reject] = []
    batches = list(read_file(path, on_reject=rejects.append, **kw))
    table = pa.Table.from_batches(batches, schema=CANONICAL_SCHEMA)
    return table, rejects


def _write_all(tmp_path: Path) -> dict[str, Path]:
    table = pa.table(ROWS)
    paths = {}
    paths["parquet"] = tmp_path / "e.parquet"
    pq.write_table(table, paths["parquet"])
    paths["arrow"] = tmp_path / "e.arrow"
    with pa.OSFile(str(paths["arrow"]), "wb") as f, pa.ipc.new_file(f, table.schema) as w:
        w.write_table(table)
    paths["arrow-stream"] = tmp_path / "e.stream"
    with pa.OSFile(str(paths["arrow-stream"]), "wb") as f, pa.ipc.new_stream(f, table.schema) as w:
        w.write_table(table)
    lines = [",".join(ROWS)]
    for i in range(3):
        lines.append(",".join("" if ROWS[k][i] is None else ROWS[k][i] for k in ROWS))
    paths["csv"] = tmp_path / "e.txt"  # no telling extension: content decides
    paths["csv"].write_text("\n".join(lines) + "\n")
    paths["ndjson"] = tmp_path / "e.log.gz"
    with gzip.open(paths["ndjson"], "wt") as f:
        for row in table.to_pylist():
            f.write(pa.scalar(row).as_py().__repr__().replace("'", '"').replace("None", "null")
                    + "\n")
    return paths


@pytest.mark.parametrize("kind", ["parquet", "arrow", "arrow-stream", "csv", "ndjson"])
def test_every_generic_format_maps_to_the_same_canonical_rows(tmp_path: Path, kind: str) -> None:
    path = _write_all(tmp_path)[kind]
    table, rejects = _read(path)
    assert rejects == []
    assert table.schema == CANONICAL_SCHEMA
    assert table.column("@timestamp").to_pylist() == EXPECTED_TS
    assert table.column("source.ip").to_pylist() == ROWS["source.ip"]
    assert table.column("destination.port").to_pylist() == [53, 443, 80]
    assert table.column("dns.question.name").to_pylist() == ROWS["dns.question.name"]


def test_format_is_sniffed_by_content(tmp_path: Path) -> None:
    paths = _write_all(tmp_path)
    assert detect_format(paths["parquet"]) == "parquet"
    assert detect_format(paths["arrow"]) == "arrow"
    assert detect_format(paths["arrow-stream"]) == "arrow"
    assert detect_format(paths["csv"]) == "csv"
    assert detect_format(paths["ndjson"]) == "ndjson"


def test_nested_ecs_structs_are_flattened(tmp_path: Path) -> None:
    path = tmp_path / "nested.ndjson"
    path.write_text(
        '{"@timestamp": 1704067200, "source": {"ip": "1.2.3.4", "port": 5}, '
        '"url": {"full": "http://x/"}}\n'
    )
    table, rejects = _read(path)
    assert rejects == []
    assert table.column("source.ip").to_pylist() == ["1.2.3.4"]
    assert table.column("source.port").to_pylist() == [5]
    assert table.column("url.full").to_pylist() == ["http://x/"]
    assert table.column("@timestamp").to_pylist() == [datetime(2024, 1, 1, tzinfo=UTC)]


def test_bad_rows_are_rejected_with_line_numbers_and_the_rest_kept(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(
        "@timestamp,source.ip,source.port\n"
        "2024-01-01T00:00:00Z,1.1.1.1,1\n"
        "2024-01-01T00:00:00Z,1.1.1.2,2,extra\n"
        "2024-01-01T00:00:00Z,1.1.1.3,port\n"
        "yesterday,1.1.1.4,4\n"
        "2024-01-01T00:00:00Z,1.1.1.5,5\n"
    )
    table, rejects = _read(path)
    assert table.column("source.ip").to_pylist() == ["1.1.1.1", "1.1.1.5"]
    by_line = {r.line: r for r in rejects}
    assert set(by_line) == {3, 4, 5}
    assert by_line[4].column == "source.port"
    assert "port" in by_line[4].reason
    assert by_line[5].column == "@timestamp"
    assert all(r.path == str(path) for r in rejects)


def test_invalid_json_lines_are_rejected_with_text(tmp_path: Path) -> None:
    path = tmp_path / "bad.ndjson"
    path.write_text(
        '{"@timestamp": "2024-01-01T00:00:00Z", "source.ip": "1.1.1.1"}\n'
        "\n"
        "{not json\n"
        '{"@timestamp": "2024-01-01T00:00:01Z", "source.ip": "1.1.1.2", "source.port": "x"}\n'
        '{"@timestamp": "2024-01-01T00:00:02Z", "source.ip": "1.1.1.3"}\n'
    )
    table, rejects = _read(path)
    assert table.column("source.ip").to_pylist() == ["1.1.1.1", "1.1.1.3"]
    assert [(r.line, r.raw) for r in rejects] == [
        (3, "{not json"),
        (4, '{"@timestamp": "2024-01-01T00:00:01Z", "source.ip": "1.1.1.2", "source.port": "x"}'),
    ]


def test_file_without_event_time_is_an_input_error_naming_the_column(tmp_path: Path) -> None:
    path = tmp_path / "nots.parquet"
    pq.write_table(pa.table({"source.ip": ["1.2.3.4"]}), path)
    with pytest.raises(InputError) as e:
        list(read_file(path))
    assert e.value.location is not None
    assert e.value.location.path == str(path)
    assert e.value.location.column == "@timestamp"


def test_unknown_format_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "notes.bin"
    path.write_bytes(b"\x00\x01 some binary thing")
    with pytest.raises(InputError, match="unknown format") as e:
        detect_format(path)
    assert e.value.location.path == str(path)


@pytest.mark.parametrize("batch_size", [1, 7, 1000])
def test_batches_never_exceed_batch_size(tmp_path: Path, batch_size: int) -> None:
    n = 2500
    table = pa.table({
        "@timestamp": pa.array(range(n), pa.int64()).cast(pa.timestamp("s", "UTC")),
        "source.port": pa.array(range(n), pa.int64()),
    })
    path = tmp_path / "many.parquet"
    pq.write_table(table, path, row_group_size=900)
    sizes = [b.num_rows for b in read_file(path, batch_size=batch_size)]
    assert sum(sizes) == n
    assert max(sizes) <= batch_size


def test_expand_inputs_walks_folders_and_globs_and_reports_missing(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.log").write_text("x")
    (tmp_path / "a" / ".hidden").write_text("x")
    (tmp_path / "a" / "alerts.duckdb").write_text("x")
    (tmp_path / "b.log").write_text("x")
    files, errors = expand_inputs([str(tmp_path / "a"), str(tmp_path / "*.log"),
                                   str(tmp_path / "missing.log"), str(tmp_path / "none*.gz")])
    assert [f.path.name for f in files] == ["x.log", "b.log"]
    assert [f.explicit for f in files] == [False, True]
    assert len(errors) == 1
    assert errors[0].location.path.endswith("missing.log")


def test_a_gzip_cut_off_is_named_as_such_not_taken_for_empty(tmp_path: Path) -> None:
    from detect.errors import NotTelemetryError

    data = gzip.compress(b"".join(b'{"@timestamp": "2024-01-01T00:00:00Z", "i": %d}\n' % i
                                  for i in range(5000)))  # fmt: skip
    tiny = tmp_path / "tiny.json.gz"
    tiny.write_bytes(data[:20])  # nothing decompresses
    with pytest.raises(InputError, match="cannot read") as e:
        detect_format(tiny)
    assert not isinstance(e.value, NotTelemetryError)  # so a folder walk reports it
    half = tmp_path / "half.json.gz"
    half.write_bytes(data[: len(data) // 2])  # the head is readable: the format is known
    assert detect_format(half) == "ndjson"
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    with pytest.raises(NotTelemetryError, match="file is empty"):
        detect_format(empty)


def test_tls_versions_of_every_sensor_spelling_are_one_ecs_value() -> None:
    from detect.readers.base import ecs_tls_version

    spelled = ["TLS 1.2", "TLSv12", "TLSv1.2", "TLSv1", "TLSv10", "TLS 1.0", "TLSv13-draft23",
               "SSLv3", "DTLSv12", "garbage", None]  # fmt: skip
    assert ecs_tls_version(pa.array(spelled)).to_pylist() == [
        "1.2", "1.2", "1.2", "1.0", "1.0", "1.0", "1.3", "3.0", None, None, None,
    ]  # fmt: skip
    assert ecs_tls_version(pa.array(["TLSv12"]).dictionary_encode()).to_pylist() == ["1.2"]
