"""What `shuku run` shows while a stage runs and when it ends: read from the run's event log
(whichever process executes it), never from inside the assets.

A thread follows the newest unfinished run this process started (tagged with its pid) and
counts: the step running, steps done of the plan's steps, partitions prepared of the range's,
rows written (the tables' row counts once a step materialises them, its partitions' rows
before), lines quarantined, checks failed, the tables changed.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from dataclasses import dataclass, field

import dagster as dg

from assets.progress import INGEST_STEP, read_partition_line
from pipelines.runner import PID_TAG, Stage

FOLLOWED = {dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE,
            dg.DagsterEventType.ASSET_MATERIALIZATION, dg.DagsterEventType.ASSET_CHECK_EVALUATION}


def partitions_in(stage: Stage) -> int:
    """How many partitions each partitioned step of the stage prepares (0: not partitioned)."""
    if not stage.range:
        return 1                                    # a snapshot: one (a models stage has no ingest step)
    first, last = stage.range
    if len(first) == 7:                             # months
        return (int(last[:4]) - int(first[:4])) * 12 + int(last[5:]) - int(first[5:]) + 1
    return (dt.date.fromisoformat(last) - dt.date.fromisoformat(first)).days + 1


@dataclass
class Tally:
    """What the runs of one `shuku run` did so far."""

    step: str = ""
    steps_done: int = 0
    steps_total: int = 0
    partitions_done: int = 0
    partitions_total: int = 0
    # (step, table) → rows the step wrote to the table: a run over a range of partitions makes one
    # materialisation event per partition, each with the whole run's row count, so it is kept once.
    rows_by_table: dict[tuple[str, str], int] = field(default_factory=dict)
    rows_pending: dict[str, int] = field(default_factory=dict)   # step → rows of its partitions, not yet materialised
    quarantined: int = 0
    checks_failed: set[tuple[str, str]] = field(default_factory=set)
    tables: set[str] = field(default_factory=set)
    finished: list[tuple[str, bool]] = field(default_factory=list)   # steps ended, in order: (step, success)

    @property
    def rows_written(self) -> int:
        return sum(self.rows_by_table.values()) + sum(self.rows_pending.values())

    def take(self, record) -> None:
        entry = record.event_log_entry
        event = entry.dagster_event
        if event is None:
            if (line := read_partition_line(entry.user_message)) is not None:
                step, _key, rows, quarantined = line
                self.partitions_done += 1
                self.rows_pending[step] = self.rows_pending.get(step, 0) + rows
                self.quarantined += quarantined
            return
        kind = event.event_type
        if kind == dg.DagsterEventType.STEP_START:
            self.step = event.step_key
        elif kind in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            self.steps_done += 1
            self.finished.append((event.step_key, kind == dg.DagsterEventType.STEP_SUCCESS))
        elif kind == dg.DagsterEventType.ASSET_MATERIALIZATION:
            materialization = event.step_materialization_data.materialization
            table = ".".join(materialization.asset_key.path)
            self.tables.add(table)
            rows = int(getattr(materialization.metadata.get("dagster/row_count"), "value", 0) or 0)
            self.rows_by_table[(event.step_key, table)] = rows
            self.rows_pending.pop(event.step_key, None)
        elif kind == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            if not evaluation.passed:
                self.checks_failed.add((".".join(evaluation.asset_key.path), evaluation.check_name))


class Follower(threading.Thread):
    """Follows the newest unfinished run of this process while a stage runs, into ``tally``."""

    def __init__(self, instance: dg.DagsterInstance, tally: Tally, stage: Stage, shown=None, every_s: float = 0.5):
        super().__init__(daemon=True)
        self.instance, self.tally, self.stage, self.shown, self.every_s = instance, tally, stage, shown, every_s
        self.since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        self.stopped = threading.Event()
        self.run_id: str | None = None
        self.cursor: str | None = None

    def _find_run(self) -> None:
        """The stage's run: the newest this process created since the follower began."""
        runs = self.instance.get_runs(filters=dg.RunsFilter(tags={PID_TAG: str(os.getpid())}, created_after=self.since),
                                      limit=1)
        if runs:
            run = runs[0]
            self.run_id, self.cursor = run.run_id, None
            if run.execution_plan_snapshot_id:
                steps = self.instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id).steps
                self.tally.steps_total += len(steps)
                self.tally.partitions_total += partitions_in(self.stage) * sum(
                    1 for s in steps if s.key.startswith(INGEST_STEP))

    def poll(self) -> None:
        if self.run_id is None:
            self._find_run()
        if self.run_id is None:
            return
        while True:
            found = self.instance.get_records_for_run(self.run_id, cursor=self.cursor, limit=500)
            for record in found.records:
                self.tally.take(record)
            self.cursor = found.cursor
            if not found.has_more:
                break
        if self.shown is not None:
            self.shown(self.tally)

    def run(self) -> None:
        while not self.stopped.wait(self.every_s):
            try:
                self.poll()
            except Exception:  # noqa: BLE001 - a read that failed only delays what is shown; the run goes on
                continue

    def stop(self) -> None:
        """Stop following and take the run's last events."""
        self.stopped.set()
        self.join()
        try:
            self.poll()
        except Exception:  # noqa: BLE001 - the summary then counts what was read before
            pass
