"""DuckDB run store: schema migrations, the run lock and the one-transaction-per-run writer.

A run does::

    with RunLock(db_path):
        with open_store(db_path) as store:
            seen = store.seen_hashes(hashes)
        ...  # read, match, aggregate with detect.alerts.aggregate_hits
        with open_store(db_path) as store:
            result = store.commit_run(record, inputs, contributions)
"""

from detect.store.hashing import content_hash
from detect.store.lock import RunLock, acquire_lock, lock_path
from detect.store.migrations import MIGRATIONS, Migration
from detect.store.runstore import (
    ALERT_COLUMNS,
    CommitResult,
    IndicatorSetRecord,
    InputRecord,
    RunRecord,
    RunStatus,
    StateRecord,
    Store,
    new_run_id,
    open_store,
)

__all__ = [
    "ALERT_COLUMNS",
    "MIGRATIONS",
    "CommitResult",
    "IndicatorSetRecord",
    "InputRecord",
    "Migration",
    "RunLock",
    "RunRecord",
    "RunStatus",
    "StateRecord",
    "Store",
    "acquire_lock",
    "content_hash",
    "lock_path",
    "new_run_id",
    "open_store",
]
