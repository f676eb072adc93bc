"""A small Data Docs site: the latest result of every check per table and partition, as static HTML.

``$SHUKU_HOME/quality/docs/index.html`` lists every table and what fails now; one page per
table lists its checks and, per partition (range) checked, the latest result of each. The
pages are self-contained (inline CSS, no script, nothing fetched). Each evaluation updates
its table's state (``data/<table>.json``: the latest outcome per partition and check, so the
site stays as small as the set of partitions, not the history of runs) and rewrites the
table's page and the index (from ``index.json``, one summary per table); `rebuild_docs` makes
everything again from meta.quality_results.
"""

from __future__ import annotations

import datetime as dt
import html
import json
from pathlib import Path

from quality.plan import planned_checks
from quality.report import latest_results
from schemas.model import contract_for
from warehouse.lake.files import write_text_atomic
from warehouse.pages import STYLE as PAGE_STYLE
from warehouse.pages import VIEWPORT, head, labelled
from warehouse.settings import Settings

FIELDS = ("check_name", "severity", "success", "observed_value", "unexpected_count", "sample", "checked_at", "run_id")
STYLE = """body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:.25em .5em;
text-align:left;vertical-align:top}th{background:#f3f3f3}.fail{color:#b00020;font-weight:bold}
.warn{color:#8a5a00;font-weight:bold}.pass{color:#1b5e20}code{font-size:12px}"""
FAIL_CLASS = ' class="fail"'


def docs_dir(settings: Settings) -> Path:
    return settings.home / "quality" / "docs"


def index_path(settings: Settings) -> Path:
    return docs_dir(settings) / "index.html"


def _state_path(settings: Settings, table: str) -> Path:
    return docs_dir(settings) / "data" / f"{table}.json"


def _load(settings: Settings, table: str) -> dict[str, dict[str, dict]]:
    """A table's state: partition label → check name → latest outcome."""
    path = _state_path(settings, table)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def update_docs(settings: Settings, table: str, run_id: str, partition_key: str, outcomes: list) -> Path:
    """Record one evaluation of ``table`` (``CheckOutcome`` list) and rewrite its page and the index."""
    if not outcomes:
        return index_path(settings)
    state = _load(settings, table)
    checked_at = dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="seconds")
    state[partition_key] = {o.check_name: {
        "check_name": o.check_name, "severity": o.severity, "success": o.success, "observed_value": o.observed_value,
        "unexpected_count": o.unexpected_count, "sample": list(o.sample), "checked_at": checked_at, "run_id": run_id}
        for o in outcomes}
    return _publish(settings, {table: state})


def rebuild_docs(settings: Settings) -> Path:
    """Every page again from meta.quality_results (the latest result per table, partition and check)."""
    states: dict[str, dict] = {}
    for row in latest_results(settings):
        entry = {f: row.get(f) for f in FIELDS if f != "sample"}
        entry["sample"] = json.loads(row.get("unexpected_sample") or "[]")
        entry["checked_at"] = row["checked_at"].isoformat(sep=" ", timespec="seconds")
        states.setdefault(row["table_name"], {}).setdefault(row["partition_key"], {})[row["check_name"]] = entry
    folder = docs_dir(settings)
    for stale in [*folder.glob("data/*.json"), *folder.glob("*.*.html")]:
        if stale.stem not in states:
            stale.unlink()
    return _publish(settings, states, every_table=True)


def _summary(state: dict) -> dict:
    """What the index shows of a table: partitions checked, when, and its failing checks."""
    return {"partitions": len(state),
            "last": max((e["checked_at"] for checks in state.values() for e in checks.values()), default="-"),
            "failing": _failing(state)}


def _publish(settings: Settings, states: dict[str, dict], every_table: bool = False) -> Path:
    """Write the tables' state and pages, then the index from each table's summary (kept in ``index.json``)."""
    folder = docs_dir(settings)
    summaries_path = folder / "index.json"
    summaries = {} if every_table or not summaries_path.exists() else json.loads(summaries_path.read_text("utf-8"))
    for table, state in states.items():
        write_text_atomic(_state_path(settings, table), json.dumps(state, ensure_ascii=False, sort_keys=True))
        write_text_atomic(folder / f"{table}.html", _table_page(table, state))
        summaries[table] = _summary(state)
    write_text_atomic(summaries_path, json.dumps(summaries, ensure_ascii=False, sort_keys=True))
    write_text_atomic(index_path(settings), _index_page(summaries))
    return index_path(settings)


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def _page(title: str, body: str) -> str:
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">{VIEWPORT}<title>{_e(title)}</title>"
            f"<style>{PAGE_STYLE}{STYLE}</style></head><body>\n{body}\n</body></html>\n")


def _mark(entry: dict) -> str:
    if entry["success"]:
        return '<span class="pass">pass</span>'
    return f'<span class="{"fail" if entry["severity"] == "error" else "warn"}">FAIL ({_e(entry["severity"])})</span>'


def _failing(state: dict) -> list[tuple[str, dict]]:
    return [(label, e) for label, checks in sorted(state.items(), reverse=True)
            for e in checks.values() if not e["success"]]


def _failing_table(entries: list[tuple[str | None, str, dict]]) -> str:
    """Failing checks as (table or None, partition label, outcome): what, where and a sample."""
    linked = any(table for table, _, _ in entries)
    rows = []
    for table, label, e in entries:
        link = labelled("table", f'<a href="{_e(table)}.html">{_e(table)}</a>') if linked else ""
        rows.append(f"<tr>{link}{labelled('check', _e(e['check_name']))}{labelled('result', _mark(e))}"
                    f"{labelled('partitions', _e(label))}{labelled('observed', _e(e['observed_value']))}"
                    f"{labelled('sample (where)', '<br>'.join(_e(s) for s in e['sample']))}"
                    f"{labelled('checked (UTC)', _e(e['checked_at']))}</tr>")
    headers = ["table"] * linked + ["check", "result", "partitions", "observed", "sample (where)", "checked (UTC)"]
    return f"<table>{head(headers)}<tbody>{''.join(rows)}</tbody></table>"


def _table_page(table: str, state: dict) -> str:
    described = {c.name: (c.description, c.severity) for c in planned_checks(contract_for(table))}
    failing = _failing(state)
    body = [f'<p><a href="index.html">all tables</a></p><h1>{_e(table)}</h1>',
            f"<h2>Failing now ({len(failing)})</h2>",
            _failing_table([(None, label, e) for label, e in failing]) if failing
            else "<p>No check fails on the latest results.</p>",
            "<h2>Checks</h2><table>" + head(["check", "severity", "what it says"]) + "<tbody>"]
    body += [f"<tr>{labelled('check', _e(name))}{labelled('severity', _e(sev))}{labelled('what it says', _e(text))}</tr>"
             for name, (text, sev) in described.items()]
    body.append("</tbody></table><h2>Latest result per partition</h2><table>"
                + head(["partitions", "checks", "failing", "checked (UTC)", "run"]) + "<tbody>")
    for label, checks in sorted(state.items(), reverse=True):
        bad = sorted(e["check_name"] for e in checks.values() if not e["success"])
        newest = max(checks.values(), key=lambda e: e["checked_at"])
        body.append(f"<tr>{labelled('partitions', _e(label))}{labelled('checks', str(len(checks)))}"
                    f"{labelled('failing', _e(', '.join(bad)) or '-', FAIL_CLASS if bad else '')}"
                    f"{labelled('checked (UTC)', _e(newest['checked_at']))}"
                    f"{labelled('run', '<code>' + _e(newest['run_id']) + '</code>')}</tr>")
    body.append("</tbody></table>")
    return _page(f"Quality: {table}", "\n".join(body))


def _index_page(summaries: dict[str, dict]) -> str:
    body = ["<h1>Shuku data quality</h1><p>The latest result of every check, per table and partition checked. "
            "Freshness warns on loaded history (older than the SLA by nature).</p>",
            "<table>" + head(["table", "partitions checked", "failing (error)", "failing (warn)", "last checked (UTC)"])
            + "<tbody>"]
    failing_all = []
    for table, summary in sorted(summaries.items()):
        failing = summary["failing"]
        failing_all += [(table, label, e) for label, e in failing]
        errors = sum(1 for _, e in failing if e["severity"] == "error")
        link = f'<a href="{_e(table)}.html">{_e(table)}</a>'
        body.append(f"<tr>{labelled('table', link)}"
                    f"{labelled('partitions checked', str(summary['partitions']))}"
                    f"{labelled('failing (error)', str(errors), FAIL_CLASS if errors else '')}"
                    f"{labelled('failing (warn)', str(len(failing) - errors))}"
                    f"{labelled('last checked (UTC)', _e(summary['last']))}</tr>")
    body.append(f"</tbody></table><h2>Failing now ({len(failing_all)})</h2>")
    failing_all.sort(key=lambda f: (f[2]["severity"] != "error", f[0], f[2]["check_name"], f[1]))
    body.append(_failing_table(failing_all) if failing_all else "<p>Nothing fails.</p>")
    return _page("Shuku data quality", "\n".join(body))
