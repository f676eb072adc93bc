"""Reading meta.quality_results back: the latest result of each check, what fails now, since when, and where.

`shuku quality`, `shuku status` and the Data Docs site all read through here.
"""

from __future__ import annotations

from schemas.model import contract_for
from warehouse.lake.paths import table_dir
from quality.check_state import RESULTS_TABLE
from warehouse.lake.views import files_connection
from warehouse.settings import Settings

# The latest result of each check on each partition (range) a run checked.
LATEST_SQL = """
SELECT * EXCLUDE (recency) FROM (
    SELECT *, row_number() OVER (PARTITION BY table_name, check_name, partition_key ORDER BY checked_at DESC) AS recency
    FROM meta.quality_results
) WHERE recency = 1
"""

# The latest results that failed, and when each one's current failing streak began.
FAILING_SQL = f"""
WITH latest AS ({LATEST_SQL}), last_pass AS (
    SELECT table_name, check_name, partition_key, max(checked_at) AS passed_at
    FROM meta.quality_results WHERE success GROUP BY ALL
), streak AS (
    SELECT r.table_name, r.check_name, r.partition_key, min(r.checked_at) AS since
    FROM meta.quality_results AS r LEFT JOIN last_pass AS p USING (table_name, check_name, partition_key)
    WHERE NOT r.success AND r.checked_at > coalesce(p.passed_at, TIMESTAMP '0001-01-01')
    GROUP BY ALL
)
SELECT latest.table_name, latest.check_name, latest.severity, latest.partition_key, streak.since,
       latest.unexpected_count, latest.observed_value, latest.unexpected_sample, latest.run_id
FROM latest JOIN streak USING (table_name, check_name, partition_key)
WHERE NOT latest.success AND ($table IS NULL OR latest.table_name = $table
      OR split_part(latest.table_name, '.', 2) = $table)
ORDER BY latest.severity, latest.table_name, latest.check_name, latest.partition_key
"""


def _records(settings: Settings, sql: str, params: dict | None = None) -> list[dict]:
    """The rows of a query over meta.quality_results (none before any check ran)."""
    con = files_connection(settings, [RESULTS_TABLE])
    if not con.execute("SELECT count(*) FROM duckdb_views() WHERE schema_name = 'meta'").fetchone()[0]:
        con.close()
        return []
    try:
        cursor = con.execute(sql, params or {})
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]
    finally:
        con.close()


def latest_results(settings: Settings) -> list[dict]:
    """The latest result of every check on every partition (range) checked."""
    return _records(settings, LATEST_SQL + " ORDER BY table_name, partition_key, check_name")


def failing_checks(settings: Settings, table: str | None = None) -> list[dict]:
    """Checks whose latest result failed (all tables, or ``table``), each with ``since`` and ``where``."""
    rows = _records(settings, FAILING_SQL, {"table": table})
    for row in rows:
        row["where"] = rows_location(settings, row["table_name"], row["partition_key"])
    return rows


def rows_location(settings: Settings, table_name: str, partition_key: str) -> str:
    """Where the checked rows live: the partition folder(s), or the table's folder."""
    contract = contract_for(table_name)
    folder = table_dir(settings, contract)
    part = contract.partition_column
    if part is not None and partition_key != "all":
        first, _, last = partition_key.partition("..")
        to_day = (lambda k: k) if contract.partitioning == "day" else (lambda k: f"{k}-01")
        keys = to_day(first) + (f"..{to_day(last)}" if last else "")
        folder = folder / f"{part.name}={keys}"
    try:
        return str(folder.relative_to(settings.home))
    except ValueError:
        return str(folder)
