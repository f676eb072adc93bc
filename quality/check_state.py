"""The checks failing now, in one small record (``check_state.json``) kept as results are written.

meta.quality_results holds one file per table and run: a year of nightly runs is tens of
thousands of files, too many to read at every `shuku status`. The record keeps, per table and
check, the partitions (ranges) whose latest result failed and in how many runs in a row the
check failed (since when); a check whose partitions all pass again leaves it. It is the
results replayed in the order they were written, so a home without it (an older version) gets it
rebuilt from meta.quality_results at the next write, and `shuku status` replays them meanwhile.
"""

from __future__ import annotations

from pathlib import Path

from warehouse.lake.files import read_record
from warehouse.lake.locks import update_record
from warehouse.lake.paths import data_files
from warehouse.lake.views import files_connection
from warehouse.settings import Settings

VERSION = 1
RESULTS_TABLE = "meta.quality_results"
# What the replay reads of each result, in meta.quality_results' column names.
FIELDS = ("run_id", "table_name", "check_name", "partition_key", "severity", "success", "observed_value",
          "unexpected_count", "checked_at")


def state_path(settings: Settings) -> Path:
    return settings.home / "check_state.json"


def apply_run(checks: dict[str, dict], results: list[dict]) -> None:
    """Take one run's results (dicts of ``FIELDS``; ``checked_at`` ISO text) into ``checks``."""
    failed_now: dict[str, dict] = {}
    for r in results:
        key = f"{r['table_name']}|{r['check_name']}"
        entry = checks.setdefault(key, {"table": r["table_name"], "check": r["check_name"], "severity": r["severity"],
                                        "failing": {}, "runs": 0, "since": None, "last_run": None})
        entry["severity"] = r["severity"]
        if r["success"]:
            entry["failing"].pop(r["partition_key"], None)
        else:
            entry["failing"][r["partition_key"]] = {"observed": r["observed_value"], "unexpected": r["unexpected_count"],
                                                    "checked_at": r["checked_at"], "run_id": r["run_id"]}
            failed_now.setdefault(key, r)
    for key in {f"{r['table_name']}|{r['check_name']}" for r in results}:
        entry = checks[key]
        if not entry["failing"]:
            del checks[key]
        elif key in failed_now and entry["last_run"] != failed_now[key]["run_id"]:
            entry["runs"] += 1
            entry["since"] = entry["since"] or failed_now[key]["checked_at"]
            entry["last_run"] = failed_now[key]["run_id"]


def replayed(settings: Settings) -> dict[str, dict]:
    """The record as the stored results give it: every run's results, in the order they were checked."""
    if next(data_files(settings, RESULTS_TABLE), None) is None:
        return {}
    con = files_connection(settings, [RESULTS_TABLE])
    try:
        rows = con.execute(f"SELECT {', '.join(FIELDS[:-1])}, strftime(checked_at, '%Y-%m-%dT%H:%M:%S.%f') "
                           "FROM meta.quality_results ORDER BY checked_at, run_id").fetchall()
    finally:
        con.close()
    checks: dict[str, dict] = {}
    run: list[dict] = []
    for row in rows:
        result = dict(zip(FIELDS, row))
        if run and result["run_id"] != run[-1]["run_id"]:
            apply_run(checks, run)
            run = []
        run.append(result)
    if run:
        apply_run(checks, run)
    return checks


def read_check_state(settings: Settings) -> dict[str, dict] | None:
    return read_record(state_path(settings), VERSION, "checks")


def record_run_results(settings: Settings, results: list[dict]) -> None:
    """Take the results just written (after their file) into the record, under its lock; a home
    without a record gets it from every stored result (these included)."""
    update_record(settings, state_path(settings), VERSION, "checks", lambda: replayed(settings),
                  lambda checks: apply_run(checks, results), indent=1)


def failing_checks(settings: Settings) -> list[dict]:
    """Each check failing now, once per table: severity, runs failed in a row, since when, the
    partitions (ranges) failing, the latest observation; errors first."""
    checks = read_check_state(settings)
    checks = replayed(settings) if checks is None else checks
    shown = []
    for entry in checks.values():
        failing = entry["failing"]
        latest = max(failing.values(), key=lambda p: p["checked_at"])
        keys = sorted(failing)
        shown.append({"table": entry["table"], "check": entry["check"], "severity": entry["severity"],
                      "runs": entry["runs"], "since": entry["since"], "partitions": len(keys),
                      "partition_range": keys[0] if len(keys) == 1 else f"{keys[0]} .. {keys[-1]}",
                      "observed": latest["observed"], "unexpected": sum(p["unexpected"] or 0 for p in failing.values())})
    return sorted(shown, key=lambda f: (f["severity"], f["table"], f["check"]))
