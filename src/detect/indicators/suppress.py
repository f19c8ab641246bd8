"""Remove indicators that warninglists and allowlists call benign, saying which list did.

Matching is column-wise, never indicator x entry in Python:

- string: one hash join of indicator values with every string entry of every list;
- hostname: the suffix walk runs on the whole column, one label at a time (about
  three steps for most names), each step one hash join with the listed names;
- cidr: per list, one ``searchsorted`` of the (sorted) indicator interval starts over
  the list's sorted starts plus a running-maximum end (IPv4 uint32, IPv6 16 bytes);
- substring: polars Aho-Corasick (``contains_any``/``extract_many``), one call a list;
- regex: RE2 through ``pyarrow.compute.match_substring_regex``, one call a pattern.

Every match is collected as (row, list, entry, match type, specificity); a removed
indicator is reported once, with its most specific match (exact string, then the
longest listed suffix, then the narrowest network, then substring, then regex; ties
go to the list loaded first). ``explain`` returns all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from detect.indicators import normalize as nz
from detect.indicators.warninglists import (
    ALL_TYPES,
    CidrIndex,
    SuppressionSet,
    _v4_key,
    _v6_key,
    ip_ranges,
)

__all__ = ["REMOVED_FIELDS", "Suppression", "explain", "suppress"]

REMOVED_FIELDS = [
    pa.field("list_name", pa.string()),
    pa.field("list_entry", pa.string()),
    pa.field("match", pa.string()),  # string | hostname | cidr | substring | regex
]

_TYPES = sorted(ALL_TYPES)  # type code = position; "other" for types we do not know
_CODE = {t: i for i, t in enumerate(_TYPES)}
_RANK = {"string": 0, "hostname": 1, "cidr": 2, "substring": 3, "regex": 4}
_HOST = r"^[a-z][a-z0-9+.-]*://(?:[^@/?#]*@)?(?P<host>\[[^\]/?#]*\]|[^:/?#]*)"


@dataclass(frozen=True)
class Suppression:
    """One list that suppresses a value: the list, the entry that matched, and how."""

    list_name: str
    list_title: str
    list_entry: str
    match: str
    path: str

    def __str__(self) -> str:
        return f"{self.list_name} ({self.match} {self.list_entry!r}): {self.list_title}"


def _frame(
    rows: np.ndarray,
    lists: np.ndarray,
    entries: pa.Array | list[str],
    match: str,
    spec: np.ndarray | int,
) -> pl.DataFrame:
    n = len(rows)
    return pl.DataFrame(
        {
            "row": pl.Series(rows, dtype=pl.Int64),
            "list": pl.Series(lists, dtype=pl.Int32),
            "entry": pl.Series(entries, dtype=pl.Utf8),
            "rank": pl.Series(np.full(n, _RANK[match]), dtype=pl.Int32),
            "spec": pl.Series(np.broadcast_to(spec, (n,)), dtype=pl.Int32),
        }
    )


def _applies(lists: SuppressionSet) -> np.ndarray:
    """bool[list, type code]: does the list apply to indicators of that type."""
    out = np.zeros((max(len(lists.lists), 1), len(_TYPES)), dtype=bool)
    for i, w in enumerate(lists.lists):
        for t in w.applies_to:
            out[i, _CODE[t]] = True
    return out


def _url_hosts(lists: SuppressionSet, match: str) -> np.ndarray:
    return np.array([match in w.url_hosts for w in lists.lists] or [False], dtype=bool)


def _matches(types: pa.Array, values: pa.Array, lists: SuppressionSet) -> pl.DataFrame:
    """Every (row, list, entry, rank, spec) where a list suppresses an indicator row."""
    codes_pl = pl.Series(types.cast(pa.string())).replace_strict(
        _CODE, default=_CODE["other"], return_dtype=pl.Int32
    )
    codes = codes_pl.to_numpy()
    applies = _applies(lists)
    frames: list[pl.DataFrame] = []
    df = pl.DataFrame(
        {
            "row": pl.int_range(len(values), eager=True, dtype=pl.Int64),
            "code": codes_pl,
            "value": pl.Series(values.cast(pa.string())),
        }
    )
    is_url = codes == _CODE["url"]
    hosts = None
    if is_url.any():
        hosts = pc.struct_field(pc.extract_regex(pa.array(df["value"].to_arrow()), _HOST), "host")
        hosts = pc.utf8_trim(hosts, "[]")
    if lists.strings is not None and lists.strings.num_rows:
        frames.append(_match_strings(df, lists.strings, applies))
    if lists.hostnames is not None and lists.hostnames.num_rows:
        frames.append(_match_hosts(df, codes, hosts, lists, applies))
    frames.extend(_match_cidrs(types, values, codes, hosts, lists, applies))
    frames.extend(_match_patterns(df, codes, lists, applies))
    frames = [f for f in frames if f.height]
    if not frames:
        return _frame(np.zeros(0, np.int64), np.zeros(0, np.int32), [], "string", 0)
    return pl.concat(frames)


def _match_strings(df: pl.DataFrame, strings: pa.Table, applies: np.ndarray) -> pl.DataFrame:
    entries = pl.from_arrow(strings)
    assert isinstance(entries, pl.DataFrame)
    hit = df.join(entries, on="value", how="inner")
    ok = applies[hit["list"].to_numpy(), hit["code"].to_numpy()]
    hit = hit.filter(pl.Series(ok))
    return _frame(
        hit["row"].to_numpy(), hit["list"].to_numpy(), hit["entry"].to_arrow(), "string", 0
    )


def _match_hosts(
    df: pl.DataFrame,
    codes: np.ndarray,
    hosts: pa.Array | None,
    lists: SuppressionSet,
    applies: np.ndarray,
) -> pl.DataFrame:
    """Suffix walk: join the name, strip its first label, join again, until none is left."""
    assert lists.hostnames is not None
    names = pl.from_arrow(lists.hostnames)
    assert isinstance(names, pl.DataFrame)
    names = names.rename({"value": "name"})
    domain = codes == _CODE["domain"]
    parts = [df.filter(pl.Series(domain)).select("row", "code", pl.col("value").alias("name"))]
    if hosts is not None:
        url = pl.DataFrame(
            {"row": df["row"], "code": df["code"], "name": pl.Series(hosts).str.to_lowercase()}
        )
        parts.append(url.filter(pl.Series(codes == _CODE["url"])))
    cur = pl.concat(parts).filter(pl.col("name").str.contains(".", literal=True))
    url_ok = _url_hosts(lists, "hostname")
    found: list[pl.DataFrame] = []
    depth = 0
    while cur.height:
        hit = cur.join(names, on="name", how="inner")
        if hit.height:
            ls = hit["list"].to_numpy()
            cs = hit["code"].to_numpy()
            ok = np.where(cs == _CODE["url"], url_ok[ls], applies[ls, cs])
            hit = hit.filter(pl.Series(ok))
            found.append(
                _frame(
                    hit["row"].to_numpy(),
                    hit["list"].to_numpy(),
                    hit["entry"].to_arrow(),
                    "hostname",
                    depth,
                )
            )
        cur = cur.with_columns(
            pl.col("name").str.slice(pl.col("name").str.find(".", literal=True) + 1)
        ).filter(pl.col("name").str.contains(".", literal=True))
        depth += 1
    return (
        pl.concat(found)
        if found
        else _frame(np.zeros(0, np.int64), np.zeros(0, np.int32), [], "hostname", 0)
    )


def _match_cidrs(
    types: pa.Array,
    values: pa.Array,
    codes: np.ndarray,
    hosts: pa.Array | None,
    lists: SuppressionSet,
    applies: np.ndarray,
) -> list[pl.DataFrame]:
    """IP/CIDR indicators (and URL hosts that are IPs) inside a listed network."""
    ip_like = (codes == _CODE["ip"]) | (codes == _CODE["cidr"])
    rows = np.flatnonzero(ip_like)
    text = values.take(pa.array(rows)) if len(rows) else pa.array([], pa.string())
    via_url = np.zeros(len(rows), dtype=bool)
    if hosts is not None:
        url_rows = np.flatnonzero(codes == _CODE["url"])
        url_hosts = hosts.take(pa.array(url_rows))
        maybe_ip = np.asarray(
            pc.fill_null(pc.match_substring_regex(url_hosts, r"^[0-9.]+$|:"), False).to_numpy(
                zero_copy_only=False
            ),
            dtype=bool,
        )
        url_rows = url_rows[maybe_ip]
        rows = np.concatenate([rows, url_rows])
        text = pa.concat_arrays(
            [text.cast(pa.string()), url_hosts.filter(pa.array(maybe_ip)).cast(pa.string())]
        )
        via_url = np.concatenate([via_url, np.ones(len(url_rows), dtype=bool)])
    if not len(rows):
        return []
    lo, hi, _, ok = ip_ranges(text)
    v4 = (lo[:, :10] == 0).all(axis=1) & (lo[:, 10] == 0xFF) & (lo[:, 11] == 0xFF)
    url_ok = _url_hosts(lists, "cidr")
    out = []
    for family, key, bits in ((v4, _v4_key, 32), (~v4, _v6_key, 128)):
        index = lists.v4 if bits == 32 else lists.v6
        sel = np.flatnonzero(ok & family)
        if index is None or not len(index.start) or not len(sel):
            continue
        out.append(
            _probe(
                index,
                key(lo[sel]),
                key(hi[sel]),
                rows[sel],
                codes[rows[sel]],
                via_url[sel],
                applies,
                url_ok,
                bits,
            )
        )
    return out


def _probe(
    index: CidrIndex,
    a: np.ndarray,
    b: np.ndarray,
    rows: np.ndarray,
    codes: np.ndarray,
    via_url: np.ndarray,
    applies: np.ndarray,
    url_ok: np.ndarray,
    bits: int,
) -> pl.DataFrame:
    """Per list: the entry with start <= a that reaches furthest; a hit when it reaches b."""
    order = np.argsort(a, kind="stable")  # sorted queries: searchsorted stays in cache
    a, b, rows, codes, via_url = a[order], b[order], rows[order], codes[order], via_url[order]
    hit_rows, hit_lists, hit_entries = [], [], []
    for li in range(len(index.offsets) - 1):
        s, e = int(index.offsets[li]), int(index.offsets[li + 1])
        if s == e:
            continue
        want = np.where(via_url, url_ok[li], applies[li, codes])
        if not want.any():
            continue
        j = np.searchsorted(index.start[s:e], a, side="right") - 1
        inside = want & (j >= 0)
        jj = np.where(inside, j, 0) + s
        inside &= index.reach[jj] >= b
        if inside.any():
            hit_rows.append(rows[inside])
            hit_lists.append(np.full(int(inside.sum()), li, np.int32))
            hit_entries.append(index.witness[jj[inside]])
    if not hit_rows:
        return _frame(np.zeros(0, np.int64), np.zeros(0, np.int32), [], "cidr", 0)
    w = np.concatenate(hit_entries)
    entries = [index.entry[i] for i in w]  # one string per hit (hits are few)
    return _frame(
        np.concatenate(hit_rows), np.concatenate(hit_lists), entries, "cidr", bits - index.prefix[w]
    )


def _match_patterns(
    df: pl.DataFrame, codes: np.ndarray, lists: SuppressionSet, applies: np.ndarray
) -> list[pl.DataFrame]:
    out = []
    for li, pairs in lists.substrings.items():
        sub = df.filter(pl.Series(applies[li, codes]))
        if not sub.height or not pairs:
            continue
        pats = [p for _, p in pairs]
        raw_of = dict(zip(pats, (r for r, _ in pairs), strict=True))
        sub = sub.filter(pl.col("value").str.contains_any(pats))
        if not sub.height:
            continue
        first = sub["value"].str.extract_many(pats).list.first()
        out.append(
            _frame(
                sub["row"].to_numpy(),
                np.full(sub.height, li, np.int32),
                [raw_of.get(x, x) for x in first.to_list()],
                "substring",
                0,
            )
        )
    for li, pairs in lists.regexes.items():
        sub = df.filter(pl.Series(applies[li, codes]))
        if not sub.height:
            continue
        text = sub["value"].to_arrow()
        seen = np.zeros(sub.height, dtype=bool)
        for raw, pattern in pairs:
            m = (
                np.asarray(
                    pc.fill_null(pc.match_substring_regex(text, pattern), False).to_numpy(
                        zero_copy_only=False
                    ),
                    dtype=bool,
                )
                & ~seen
            )
            if m.any():
                seen |= m
                out.append(
                    _frame(
                        sub["row"].to_numpy()[m],
                        np.full(int(m.sum()), li, np.int32),
                        [raw] * int(m.sum()),
                        "regex",
                        0,
                    )
                )
    return out


def suppress(indicators: pa.Table, lists: SuppressionSet) -> tuple[pa.Table, pa.Table]:
    """Split indicators into (kept, removed); removed rows name the list that removed them.

    ``removed`` has the indicator columns plus ``list_name``, ``list_entry`` (as
    written in the list) and ``match`` (the match type), one row per removed
    indicator, in input order, with its most specific match.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from detect.indicators.model import indicator_table
    >>> from detect.indicators.warninglists import load_warninglists
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "ours.txt").write_text("10.0.0.0/8\\nexample.org\\n")
    >>> t = indicator_table({"type": ["ip", "domain", "domain"], "source": ["f"] * 3,
    ...                      "value": ["10.1.2.3", "www.example.org", "evil.test"]})
    >>> kept, removed = suppress(t, load_warninglists([d / "ours.txt"]))
    >>> kept["value"].to_pylist(), removed["list_entry"].to_pylist()
    (['evil.test'], ['10.0.0.0/8', 'example.org'])
    """
    n = indicators.num_rows
    if n == 0 or not lists.lists:
        return indicators, _removed(indicators.slice(0, 0), [], [], [])
    types = indicators.column("type").combine_chunks()
    values = indicators.column("value").combine_chunks()
    found = _matches(types, values, lists)
    best = found.sort(["row", "rank", "spec", "list"]).unique(
        "row", keep="first", maintain_order=True
    )
    rows = best["row"].to_numpy()
    mask = np.zeros(n, dtype=bool)
    mask[rows] = True
    kept = indicators.filter(pa.array(~mask))
    names = [lists.lists[i].name for i in best["list"].to_list()]
    inverse = {v: k for k, v in _RANK.items()}
    kinds = best["rank"].replace_strict(inverse, return_dtype=pl.Utf8).to_list()
    removed = _removed(indicators.take(pa.array(rows)), names, best["entry"].to_list(), kinds)
    return kept, removed


def _removed(
    rows: pa.Table, names: list[str], entries: list[str | None], kinds: list[str]
) -> pa.Table:
    for f, col in zip(REMOVED_FIELDS, (names, entries, kinds), strict=True):
        rows = rows.append_column(f, pa.array(col, f.type))
    return rows


def explain(value: str, kind: str | None, lists: SuppressionSet) -> list[Suppression]:
    """Every list that would suppress ``value`` (of ``kind``, inferred when None), and why.

    The value is normalised first, as a feed loader would; a ``kind`` the value is
    not valid for raises ``NormalizeError``. A value no type fits is still checked
    against the lists that apply to every type (as written).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from detect.indicators.warninglists import load_warninglists
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "ours.txt").write_text("10.0.0.0/8\\n")
    >>> [str(s) for s in explain("10.9.8.7", None, load_warninglists([d / "ours.txt"]))]
    ["ours (cidr '10.0.0.0/8'): ours"]
    """
    if kind is None:
        try:
            kind, norm = nz.infer(value)
        except nz.NormalizeError:
            kind, norm = "other", value.strip()
    else:
        kind, norm = nz.normalize(kind, value)
    found = _matches(pa.array([kind]), pa.array([norm]), lists)
    found = found.sort(["rank", "spec", "list"]).unique(
        ["list", "entry"], keep="first", maintain_order=True
    )
    inv = {v: k for k, v in _RANK.items()}
    out = []
    for li, entry, rank in zip(found["list"], found["entry"], found["rank"], strict=True):
        w = lists.lists[li]
        out.append(Suppression(w.name, w.title, entry, inv[rank], w.path))
    return out
