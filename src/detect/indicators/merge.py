"""One row per indicator, however many feeds carry it, and the severity its alerts get.

The same value from several feeds is one indicator: the highest confidence, the
union of sources and tags, the union of the validity intervals (``valid_from`` /
``valid_until`` the outer bounds, a feed that gives no bound making it unbounded, and
``validity_gaps`` the times between them that no feed calls valid), and the highest
severity any feed gave. Context-only rows (MISP
``to_ids`` off) stay context unless some feed lists the value for detection.

Alert severity of an indicator (documented in the README):

1. the highest severity a feed gave; without one, ``medium``;
2. confidence adjusts it: below 30 lowers one level, 90 or more raises one level
   (never above ``critical``, never below ``informational``);
3. a context-only indicator (``to_ids`` false) is ``informational``.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import pyarrow as pa

from detect.indicators.model import INDICATOR_SCHEMA, SEVERITIES
from detect.kernels.window_agg import running_max_before

_GAP_TYPE = pa.struct(
    [
        pa.field("start", INDICATOR_SCHEMA.field("valid_from").type),
        pa.field("end", INDICATOR_SCHEMA.field("valid_until").type),
    ]
)
MERGED_SCHEMA = pa.schema(
    [
        pa.field("type", pa.string(), nullable=False),
        pa.field("value", pa.string(), nullable=False),
        pa.field("port", pa.uint16()),
        pa.field("sources", pa.list_(pa.string())),
        pa.field("confidence", pa.int16()),
        pa.field("severity", pa.string(), nullable=False),  # the derived alert severity
        pa.field("tags", pa.list_(pa.string())),
        pa.field("valid_from", INDICATOR_SCHEMA.field("valid_from").type),
        pa.field("valid_until", INDICATOR_SCHEMA.field("valid_until").type),
        # open intervals (start, end) inside the bounds when no feed's interval covers them
        pa.field("validity_gaps", pa.list_(_GAP_TYPE)),
        pa.field("to_ids", pa.bool_()),
        pa.field("description", pa.string()),
        pa.field("origins", pa.list_(pa.string())),
    ]
)

_RANK = {s: i for i, s in enumerate(SEVERITIES)}


def merge(indicators: pa.Table) -> pa.Table:
    """Merge rows of ``INDICATOR_SCHEMA`` into one row per (type, value, port)."""
    if indicators.num_rows == 0:
        return MERGED_SCHEMA.empty_table()
    df = pl.from_arrow(indicators.select(INDICATOR_SCHEMA.names))
    assert isinstance(df, pl.DataFrame)
    rank = pl.col("severity").replace_strict(_RANK, default=None, return_dtype=pl.Int8)
    df = df.with_columns(rank.alias("_rank"), pl.col("to_ids").fill_null(True))
    key = ["type", "value", "port"]
    # most values come from one feed only: those rows need no grouping
    repeated = df.select(pl.struct(key).is_duplicated()).to_series()
    singles = df.filter(~repeated).select(
        *key,
        pl.concat_list(pl.col("source")).alias("sources"),
        "confidence",
        "_rank",
        pl.col("tags").list.unique(maintain_order=True).fill_null(pl.lit([], pl.List(pl.String))),
        "valid_from",
        "valid_until",
        "to_ids",
        "description",
        pl.when(pl.col("origin").is_null()).then(pl.lit([], pl.List(pl.String)))
        .otherwise(pl.concat_list(pl.col("origin"))).alias("origins"),
    )
    grouped = (
        df.filter(repeated)
        .group_by(key, maintain_order=True)
        .agg(
            pl.col("source").unique(maintain_order=True).alias("sources"),
            pl.col("confidence").max(),
            pl.col("_rank").max(),
            pl.col("tags").list.explode(keep_nulls=False, empty_as_null=False)
            .unique(maintain_order=True).alias("tags"),
            # a missing bound on any row makes the merged bound open
            pl.when(pl.col("valid_from").null_count() > 0).then(None)
            .otherwise(pl.col("valid_from").min()).alias("valid_from"),
            pl.when(pl.col("valid_until").null_count() > 0).then(None)
            .otherwise(pl.col("valid_until").max()).alias("valid_until"),
            pl.col("to_ids").any(),
            pl.col("description").drop_nulls().first(),
            pl.col("origin").drop_nulls().unique(maintain_order=True).head(5).alias("origins"),
        )
    )
    grouped = _with_gaps(grouped, df.filter(repeated))
    singles = singles.with_columns(pl.lit([], pl.List(_GAP)).alias("validity_gaps"))
    merged = pl.concat([singles, grouped.select(singles.columns)], how="vertical_relaxed")
    base = pl.col("_rank").fill_null(_RANK["medium"])
    conf = pl.col("confidence")
    adjusted = (
        pl.when(conf.is_not_null() & (conf < 30)).then(base - 1)
        .when(conf.is_not_null() & (conf >= 90)).then(base + 1)
        .otherwise(base)
        .clip(0, len(SEVERITIES) - 1)
    )
    final = pl.when(pl.col("to_ids")).then(adjusted).otherwise(_RANK["informational"])
    names = pl.Series(SEVERITIES)
    merged = merged.with_columns(
        final.map_batches(lambda s: names.gather(s.cast(pl.UInt32)), return_dtype=pl.String)
        .alias("severity")
    ).drop("_rank")
    return merged.select(MERGED_SCHEMA.names).to_arrow().cast(MERGED_SCHEMA)


_GAP = pl.Struct({"start": pl.Datetime("us", "UTC"), "end": pl.Datetime("us", "UTC")})
_GROUP = ["type", "value", "_port"]  # the merge key, with a null port as -1 (a join key)


def _with_gaps(grouped: pl.DataFrame, rows: pl.DataFrame) -> pl.DataFrame:
    """``grouped`` (one row per repeated key) with ``validity_gaps``: the open intervals
    inside the outer bounds that no row's ``[valid_from, valid_until]`` covers (a missing
    bound is open). A sweep per key in ``valid_from`` order: a row starting after the
    latest end so far leaves a gap from that end to its start."""
    empty = pl.lit([], pl.List(_GAP)).alias("validity_gaps")
    # a gap runs from some row's valid_until to another's valid_from: most feeds give no
    # valid_until, and their keys need no sweep
    if rows["valid_until"].null_count() == rows.height or (
        rows["valid_from"].null_count() == rows.height
    ):
        return grouped.with_columns(empty)
    port = pl.col("port").cast(pl.Int32).fill_null(-1).alias("_port")
    rows = rows.with_columns(port)
    bounded = rows.filter(pl.col("valid_until").is_not_null()).select(_GROUP).unique()
    begin = pl.col("valid_from").dt.epoch("us").fill_null(np.iinfo(np.int64).min)
    end = pl.col("valid_until").dt.epoch("us").fill_null(np.iinfo(np.int64).max)
    sweep = (
        rows.join(bounded, on=_GROUP, how="semi")
        .select(*_GROUP, begin.alias("_begin"), end.alias("_end"))
        .sort([*_GROUP, "_begin"])
    )
    new_key = sweep.select(pl.any_horizontal(pl.col(c).ne_missing(pl.col(c).shift(1))
                                             for c in _GROUP)).to_series()  # fmt: skip
    reach = running_max_before(new_key.to_numpy(), sweep["_end"].to_numpy())
    sweep = sweep.with_columns(pl.Series("_reach", reach))
    as_time = lambda c: pl.from_epoch(c, time_unit="us").dt.replace_time_zone("UTC")  # noqa: E731
    starts = sweep.filter(pl.col("_begin") > pl.col("_reach"))
    if starts.is_empty():  # feeds that agree, or overlap: the usual case
        return grouped.with_columns(empty)
    gaps = (
        starts.group_by(_GROUP)
        .agg(
            pl.struct(as_time("_reach").alias("start"), as_time("_begin").alias("end")).alias(
                "validity_gaps"
            )
        )
    )
    return (
        grouped.with_row_index("_row")
        .with_columns(port)
        .join(gaps, on=_GROUP, how="left")
        .sort("_row")
        .drop("_row", "_port")
        .with_columns(pl.col("validity_gaps").fill_null(empty))
    )
