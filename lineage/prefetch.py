"""A model's column lineage worked out in a thread while DuckDB runs the model (DuckDB releases
the GIL), so recording lineage adds little to a run's time."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

from lineage.columns import ModelLineage, sql_lineage

_worker: ThreadPoolExecutor | None = None
_pending: dict[str, Future] = {}
_done: set[str] = set()
_lock = threading.Lock()


def prefetch_sql_lineage(sql: str) -> None:
    """Start working out a model's lineage in a thread, while DuckDB (which releases the GIL) runs it."""
    global _worker
    with _lock:
        if sql in _pending or sql in _done:
            return
        if _worker is None:
            _worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="shuku-lineage")
        _pending[sql] = _worker.submit(sql_lineage, sql)


def model_lineage(sql: str) -> ModelLineage:
    """``sql_lineage``, waiting for a prefetch of the same SQL rather than parsing it twice."""
    with _lock:
        pending = _pending.pop(sql, None)
        _done.add(sql)
    return pending.result() if pending is not None else sql_lineage(sql)
