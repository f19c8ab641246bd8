"""The URL kernel against the Arrow compute path it replaced (regex and string kernels),
on text made of the characters URL parsing turns on."""

from __future__ import annotations

import contextlib
import re

import numpy as np
import pyarrow as pa
from hypothesis import example, given, settings
from hypothesis import strategies as st

from detect.indicators.normalize import (
    NormalizeError,
    _normalize_url_compute,
    normalize_url,
    normalize_url_column,
)
from detect.kernels.url_normal import normalize_url_buffers

_pieces = st.sampled_from([
    "http", "HTTP", "https", "Https", "ftp", "FTP", "h+t.t-p", "1http", "://", ":", "/", "?",
    "#", "@", ":80", ":443", ":21", ":8080", ":", "Evil.COM", "a", "B", "é", "É", "\n", " ",
    "[::1]", "x=1", "",
])
_texts = st.lists(_pieces, max_size=12).map("".join)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(_texts, st.none()), max_size=12), st.integers(0, 3))
@example(["HTTP://Evil.COM:80/A?b#c", "http://a@b@C:80", "http://@x", "https://x:443?",
          "ftp://x:21/?", "http://x??", "http://É.com/", "http://a\nb@C/", "x://", "://a"], 0)
def test_kernel_equals_the_compute_path(values: list[str | None], start: int) -> None:
    arr = pa.array(values, pa.string()).slice(min(start, len(values)))
    want = _normalize_url_compute(arr).to_pylist() if len(arr) else []
    # a URL whose authority is not ASCII gets urllib's normal form (its host in IDNA), as
    # indicator URLs do; every other row the compute path's
    for i, v in enumerate(arr.to_pylist()):
        url = re.match(r"[A-Za-z][A-Za-z0-9+.-]*://([^/?#]*)", v or "")
        auth = url.group(1) if url else ""
        if not auth.isascii():
            with contextlib.suppress(NormalizeError):
                want[i] = normalize_url(v)
    assert normalize_url_column(arr).to_pylist() == want


def test_non_ascii_hosts_take_the_compute_path() -> None:
    values = ["http://BÜCHER.example:80/X", "http://plain.EXAMPLE/Y"]
    offsets = np.array([0, *np.cumsum([len(v.encode()) for v in values])], np.int32)
    data = np.frombuffer("".join(values).encode(), np.uint8)
    _, _, fallback = normalize_url_buffers(offsets, data, np.ones(2, bool))
    assert fallback.tolist() == [True, False]
    assert normalize_url_column(pa.array(values)).to_pylist() == [normalize_url(v) for v in values]


def test_all_null_column_is_returned_as_is() -> None:
    assert normalize_url_column(pa.nulls(5, pa.string())).to_pylist() == [None] * 5
