"""Deterministic synthetic network telemetry with planted, labelled attacks.

``generate(out_dir, events=..., seed=...)`` streams Zeek-like conn, dns, http, tls
and files events in the canonical schema to Parquet, and writes the ground truth
(``ground_truth.json``, ``ground_truth_events.parquet``) and the planted indicators
(``indicators.csv``) beside them, so every detector can be tested end to end on
data whose answers are known.
"""

from detect.synthetic.api import CHUNK_EVENTS, GenerateResult, generate

__all__ = ["CHUNK_EVENTS", "GenerateResult", "generate"]
