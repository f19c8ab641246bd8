"""The JSON-lines block reader: bad lines isolated with their numbers, blocks bounded."""

from __future__ import annotations

import gzip
import re
import zlib
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pytest

from detect.readers.base import ReadContext, Reject
from detect.readers.jsonlines import LineFilter, iter_json_blocks


def read(path: Path, **kw) -> tuple[list[dict], list[int], list[Reject]]:
    rejects: list[Reject] = []
    rows, lines = [], []
    for block in iter_json_blocks(ReadContext(path, reject=rejects.append), **kw):
        rows.extend(block.table.to_pylist())
        lines.extend(block.line_of(i) for i in range(block.table.num_rows))
        for i in range(block.table.num_rows):
            assert block.raw(i).startswith("{")
    return rows, lines, rejects


def test_blank_lines_crlf_and_bad_lines(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    p.write_bytes(b'{"a":1}\r\n\r\n  \n{"a":2}\nnot json\n[1,2]\n{"a":3}')
    rows, lines, rejects = read(p)
    assert rows == [{"a": 1}, {"a": 2}, {"a": 3}]
    assert lines == [1, 4, 7]
    assert [(r.line, r.raw) for r in rejects] == [(5, "not json"), (6, "[1,2]")]


def test_conflicting_inferred_types_become_text(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    p.write_text('{"a":1}\n{"a":"two"}\n{"a":3}\n')
    rows, _, rejects = read(p)
    assert rejects == []
    assert [r["a"] for r in rows] == ["1", "two", "3"]


def test_explicit_schema_rejects_only_lines_of_another_shape(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    p.write_text('{"a":1,"b":"x"}\n{"a":"oops"}\n{"a":2,"zzz":[1]}\n')
    schema = pa.schema([("a", pa.int64()), ("b", pa.string())])
    rows, lines, rejects = read(p, explicit_schema=schema)
    assert rows == [{"a": 1, "b": "x"}, {"a": 2, "b": None}]
    assert lines == [1, 3]
    assert [r.line for r in rejects] == [2]


@pytest.mark.parametrize("compress", [False, True])
def test_many_blocks_keep_line_numbers(tmp_path: Path, compress: bool) -> None:
    n = 30_000
    text = "".join(f'{{"i":{i},"pad":"{"x" * (i % 50)}"}}\n' for i in range(n))
    text = text.replace('{"i":12345,', '{"i":12345 BROKEN,')
    p = tmp_path / ("x.json.gz" if compress else "x.json")
    if compress:
        with gzip.open(p, "wt") as f:
            f.write(text)
    else:
        p.write_text(text)
    rejects: list[Reject] = []
    ctx = ReadContext(p, batch_size=1000, reject=rejects.append)
    seen = []
    blocks = 0
    for block in iter_json_blocks(ctx):
        blocks += 1
        seen.extend(zip(block.table.column("i").to_pylist(),
                        (block.line_of(k) for k in range(block.table.num_rows)), strict=True))
    assert blocks > 1
    assert [r.line for r in rejects] == [12346]
    assert all(line == i + 1 for i, line in seen)
    assert len(seen) == n - 1


def test_a_line_longer_than_a_block_is_read(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    big = "y" * (3 << 20)
    p.write_text(f'{{"a":"{big}"}}\n{{"a":"z"}}\n')
    rows, lines, _ = read(p)
    assert [len(r["a"]) for r in rows] == [len(big), 1]
    assert lines == [1, 2]


def test_line_filter_drops_and_counts_before_parsing(tmp_path: Path) -> None:
    p = tmp_path / "x.json"
    p.write_text(
        '{"t":"keep","n":1}\n'
        '{"t":"stats","deep":{"x":1}}\n'
        "{broken but dropped\n"
        '{"t":"keep","n":2,"note":"later text \\"t\\":\\"stats\\" is not in the window"}\n'
        "{oops\n"
    )
    dropped: Counter[str] = Counter()
    pattern = re.compile(rb'"t":"(stats)"|\{(broken)')

    def on_drop(m: re.Match[bytes]) -> None:
        dropped[(m.group(1) or m.group(2)).decode()] += 1

    rows, lines, rejects = read(p, line_filter=LineFilter(pattern, on_drop, window=16))
    assert [r["n"] for r in rows] == [1, 2]
    assert lines == [1, 4]
    assert dropped == {"stats": 1, "broken": 1}
    assert [r.line for r in rejects] == [5]


def test_truncated_gzip_stops_the_file_naming_the_last_good_line(tmp_path: Path) -> None:
    from detect.errors import InputError

    data = gzip.compress(b"".join(b'{"i":%d}\n' % i for i in range(200_000)))
    p = tmp_path / "cut.json.gz"
    p.write_bytes(data[: len(data) // 2])
    readable = zlib.decompressobj(wbits=31).decompress(data[: len(data) // 2])
    with pytest.raises(InputError, match="cannot read line") as e:
        for _ in iter_json_blocks(ReadContext(p, batch_size=1000)):
            pass
    assert e.value.location.path == str(p)
    # the first line not wholly readable (lines before it were read, not lost)
    assert e.value.location.line == readable.count(b"\n") + 1
