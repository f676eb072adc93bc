"""The one place assets report what they read and wrote, for lineage.

Every asset body runs inside ``observe(...)``; it tells the observation its inputs and
outputs as it learns them. What the observation does with them (OpenLineage events,
the meta.lineage_* tables) lives behind this interface.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

from lineage.events import RunState, build_event
from lineage.transport import emitter_for
from warehouse.settings import Settings


@dataclass
class Observation:
    """What one asset execution read and wrote."""

    job: str                                   # the asset's job name, e.g. "ingest_circulation", "core.fact_loan"
    run_id: str                                # the Dagster run id
    inputs: list[str]                          # qualified tables read, e.g. "staging.circulation_event"
    outputs: list[str]                         # qualified tables written
    partition_keys: list[str]                  # partitions written (empty for whole tables)
    sql: str | None = None                     # the model's SQL, for SQL models
    source_path: str | None = None             # the file of the code or model that ran
    landing_files: list[dict] = field(default_factory=list)   # {file, sha256, bytes, rows_read}
    output_stats: dict[str, dict] = field(default_factory=dict)  # table -> {rows, bytes, files}
    assertions: dict[str, list[dict]] = field(default_factory=dict)  # table -> its checks, as assertions

    def add_landing_files(self, files: list[dict]) -> None:
        self.landing_files.extend(files)

    def add_output(self, table: str, rows: int, bytes: int | None = None, files: int | None = None) -> None:
        self.output_stats[table] = {"rows": rows, "bytes": bytes, "files": files}

    def add_assertions(self, table: str, assertions: list[dict]) -> None:
        """The checks run on ``table``, one OpenLineage data-quality assertion each (made by the
        asset factory, `assets.table_asset`, which knows the checks)."""
        if assertions:
            self.assertions.setdefault(table, []).extend(assertions)


@contextmanager
def observe(settings: Settings, *, job: str, run_id: str, inputs: list[str], outputs: list[str],
            partition_keys: list[str] | None = None, sql: str | None = None,
            source_path: str | None = None) -> Iterator[Observation]:
    """Observe one asset execution; the body fills the observation in.

    Emits a START event on entry, COMPLETE on a normal exit, FAIL (with the error) on an
    exception, which is then raised again.
    """
    observation = Observation(job=job, run_id=run_id, inputs=list(inputs), outputs=list(outputs),
                              partition_keys=list(partition_keys or []), sql=sql, source_path=source_path)
    emitter = emitter_for(settings)
    emitter.emit(build_event(RunState.START, observation, settings))
    try:
        yield observation
    except BaseException as exc:
        emitter.emit(build_event(RunState.FAIL, observation, settings, error=exc))
        raise
    emitter.emit(build_event(RunState.COMPLETE, observation, settings))
