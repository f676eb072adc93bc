"""Reading meta.quality_results back: the latest result of each check, what fails now, since when, and where.

`shuku quality`, `shuku status` and the Data Docs site all read through here.
"""

from __future__ import annotations

from schemas.model import contract_for
from warehouse.lake.paths import table_dir
from warehouse.lake.views import compute_connection
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


# One row per failing check and table, however many partitions (ranges) and runs it failed on:
# the runs its current failing streaks span, the partitions it fails on now, its latest observation.
FAILING_CHECKS_ONCE_SQL = f"""
WITH latest AS ({LATEST_SQL}), last_pass AS (
    SELECT table_name, check_name, partition_key, max(checked_at) AS passed_at
    FROM meta.quality_results WHERE success GROUP BY ALL
), failing AS (SELECT * FROM latest WHERE NOT success), streak AS (
    SELECT r.table_name, r.check_name, r.run_id, r.checked_at
    FROM meta.quality_results AS r JOIN failing AS f USING (table_name, check_name, partition_key)
    LEFT JOIN last_pass AS p USING (table_name, check_name, partition_key)
    WHERE NOT r.success AND r.checked_at > coalesce(p.passed_at, TIMESTAMP '0001-01-01')
), runs AS (
    SELECT table_name, check_name, count(DISTINCT run_id) AS runs, min(checked_at) AS since FROM streak GROUP BY ALL
)
SELECT f.table_name, f.check_name, min(f.severity) AS severity, runs.runs, runs.since,
       count(*) AS partitions, min(f.partition_key) AS first_partition, max(f.partition_key) AS last_partition,
       arg_max(f.observed_value, f.checked_at) AS observed_value, sum(f.unexpected_count) AS unexpected_count
FROM failing AS f JOIN runs USING (table_name, check_name)
GROUP BY f.table_name, f.check_name, runs.runs, runs.since
ORDER BY severity, f.table_name, f.check_name
"""


def _records(settings: Settings, sql: str, params: dict | None = None) -> list[dict]:
    con = compute_connection(settings, ["meta.quality_results"])
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


def failing_checks_once(settings: Settings) -> list[dict]:
    """Each check failing on its latest results, once per table: in how many runs it failed (its
    current failing streaks), since when, on how many partitions (ranges) now, what it observed last."""
    return _records(settings, FAILING_CHECKS_ONCE_SQL)


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
