"""The transparency report (what the library holds about readers, why, for how long, who looked,
what readers chose, what was erased and swept, which checks guard it) and a reader's own view.

Both are built from the contracts and the meta tables, never from other readers' rows: the
report holds counts only; the reader's view filters every table by that reader's pseudonym.
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt

from schemas.model import Contract, load_contracts
from schemas.vocabulary import STAGING
from warehouse.audit_anchor import current_anchors
from warehouse.guarded import ACCESS_LOG
from warehouse.lake.paths import partition_files
from warehouse.lake.views import compute_connection, has_data
from warehouse.pages import STYLE, VIEWPORT
from warehouse.privacy.consent import CONSENT_TABLE, LATEST_SQL
from warehouse.privacy.erasure import LEDGER_TABLE
from warehouse.privacy.retention import RETENTION_LOG, retention_days
from warehouse.settings import Settings

PRIVACY_CHECKS = ("no_card_numbers", "no_email_addresses", "no_phone_numbers")
QUALITY_RESULTS = "meta.quality_results"
PERSONAL = ("direct", "quasi")


def _cell(value) -> str:
    return "-" if value is None else str(value).replace("|", "\\|").replace("\n", " ")


def _table(header: list[str], rows: list[list]) -> str:
    if not rows:
        return "_None._\n"
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _span(days: int | None) -> str:
    if days is None:
        return "not declared"
    years, rest = divmod(days, 365)
    if rest:
        return f"{days} days"
    return "1 year" if years == 1 else f"{years} years"


def _label_cells(tokens: list) -> list:
    """Give every table cell its column's name (``data-label``), which a phone shows beside the value."""
    headers, column = [], 0
    for i, token in enumerate(tokens):
        if token.type == "thead_open":
            headers = []
        elif token.type == "th_open":
            headers.append(tokens[i + 1].content)
        elif token.type == "tr_open":
            column = 0
        elif token.type == "td_open":
            token.attrSet("data-label", headers[column] if column < len(headers) else "")
            column += 1
    return tokens


def to_html(markdown: str, title: str) -> str:
    parser = MarkdownIt("commonmark").enable("table")
    body = parser.renderer.render(_label_cells(parser.parse(markdown)), parser.options, {})
    style = STYLE + ("body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.45}"
             "table{border-collapse:collapse;margin:.5rem 0 1rem}td,th{border:1px solid #bbb;padding:.25rem .5rem;"
             "text-align:left;vertical-align:top}th{background:#f2f2f2}code{background:#f6f6f6}")
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">{VIEWPORT}<title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>\n{body}</body></html>\n")


def personal_data(contracts: dict[str, Contract]) -> list[list]:
    """Per table holding personal data: its personal columns, their masking, retention and purpose."""
    rows = []
    for name, contract in sorted(contracts.items()):
        personal = [c for c in contract.columns if c.pii in PERSONAL]
        if not personal:
            continue
        columns = ", ".join(f"`{c.name}` ({c.pii}, {c.masking or 'kept'}, {c.classification})" for c in personal)
        rows.append([name, columns, _span(retention_days(contract)), contract.description])
    return rows


@dataclass(frozen=True)
class Report:
    markdown: str
    html: str


def _rows(con, settings: Settings, contracts: dict[str, Contract], table: str, sql: str, params: list) -> list[tuple]:
    if not has_data(settings, contracts[table]):
        return []
    return con.execute(sql, params).fetchall()


def latest_year_with_data(settings: Settings) -> int:
    """The year a report is wanted for when none is named: the latest one with an access, a consent
    change, an erasure or a sweep, else the latest with library data (a warehouse built from last
    year's logs reports on last year), else this year."""
    contracts = load_contracts()
    dated = {ACCESS_LOG: "logged_at", CONSENT_TABLE: "changed_at", LEDGER_TABLE: "erased_at", RETENTION_LOG: "swept_at"}
    present = [t for t in dated if has_data(settings, contracts[t])]
    if present:
        con = compute_connection(settings, present)
        try:
            latest = con.execute("select max(y) from (" + " union all ".join(
                f"select max(year({dated[t]})) as y from {t}" for t in present) + ")").fetchone()[0]
        finally:
            con.close()
        if latest is not None:
            return int(latest)
    days = [key for c in contracts.values() if c.layer == STAGING and c.partition_column is not None
            for key in partition_files(settings, c)]
    return int(max(days)[:4]) if days else dt.date.today().year


def transparency_report(settings: Settings, year: int) -> Report:
    """The year's transparency report as Markdown and HTML."""
    contracts = load_contracts()
    first, last = dt.datetime(year, 1, 1), dt.datetime(year + 1, 1, 1)
    span = [first, last]
    con = compute_connection(settings, [ACCESS_LOG, CONSENT_TABLE, LEDGER_TABLE, RETENTION_LOG, QUALITY_RESULTS,
                                        "core.dim_patron"])
    try:
        access = _rows(con, settings, contracts, ACCESS_LOG, """
            with q as (select *, row_number() over () as qid from meta.access_log where logged_at >= ? and logged_at < ?)
            select role, outcome, count(distinct qid), count(distinct user_name),
                   string_agg(distinct o, ', ' order by o) filter (where o is not null and o not like '%.%.%')
            from q left join (select qid, unnest(objects) as o from q) using (qid)
            group by role, outcome order by role, outcome""", span)
        consent_now = _rows(con, settings, contracts, CONSENT_TABLE, f"""
            select count(*), count(*) filter (where profiling), count(*) filter (where not profiling),
                   count(*) filter (where recommendations), count(*) filter (where not recommendations)
            from ({LATEST_SQL}) where changed_at < ?""", [last])
        consent_changes = _rows(con, settings, contracts, CONSENT_TABLE, """
            select source, count(*) from meta.consent where changed_at >= ? and changed_at < ?
            group by source order by source""", span)
        erasures = _rows(con, settings, contracts, LEDGER_TABLE, """
            select strftime(erased_at, '%Y-%m-%d'), left(request_hash, 12), requested_by, requested_with,
                   rows_removed_count, landing_files_count, len(partitions_rewritten), len(models_rebuilt)
            from meta.erasure_ledger where erased_at >= ? and erased_at < ? order by erased_at""", span)
        sweeps = _rows(con, settings, contracts, RETENTION_LOG, """
            select strftime(max(swept_at), '%Y-%m-%d'), left(sweep_id, 8),
                   count(*) filter (where action = 'landing_file_deleted'),
                   coalesce(sum(row_count) filter (where action = 'rows_delinked'), 0)
            from meta.retention_log where swept_at >= ? and swept_at < ? group by sweep_id order by 1""", span)
        checks = _rows(con, settings, contracts, QUALITY_RESULTS, f"""
            select check_name, table_name, success, unexpected_count, strftime(checked_at, '%Y-%m-%d %H:%M')
            from meta.quality_results
            where check_name in ({', '.join('?' for _ in PRIVACY_CHECKS)})
            qualify row_number() over (partition by check_name, table_name order by checked_at desc) = 1
            order by check_name, table_name""", list(PRIVACY_CHECKS))
        readers = _rows(con, settings, contracts, "core.dim_patron", "select count(*) from core.dim_patron", [])
    finally:
        con.close()
    held, yes_no = personal_data(contracts), (consent_now[0] if consent_now else (0, 0, 0, 0, 0))
    failed = [c for c in checks if not c[2]]
    md = [f"# Transparency report {year}\n",
          f"How the library's warehouse (Shuku) handled readers' data in {year}: what it holds and why, for how "
          "long, who queried it, what readers chose, what was erased and swept away, and the checks that guard it. "
          f"Figures are counts; no reader is named. Generated {dt.date.today().isoformat()}.\n",
          "## Personal data held, its purpose and retention\n",
          "Card numbers, names, e-mails and phone numbers never leave the landing files: from staging on, a reader "
          "is a pseudonym (`patron_pid`, HMAC-SHA256 of the card number under a key kept outside the warehouse). "
          f"Readers in the warehouse now: {readers[0][0] if readers else 0}.\n",
          _table(["table", "personal columns (pii, masking, classification)", "kept for", "purpose"], held),
          "## Who queried what\n",
          "Every query through the SQL guard, allowed or refused, by role and outcome, with the tables it touched.\n",
          _table(["role", "outcome", "queries", "staff accounts", "tables"], [list(r) for r in access]),
          "## Readers' consent\n",
          f"At the end of {year}, {yes_no[0]} reader(s) had a recorded choice: profiling yes {yes_no[1]}, no {yes_no[2]}; "
          f"recommendations yes {yes_no[3]}, no {yes_no[4]}. Readers who said no are left out of profiles and "
          "recommendations and still counted in anonymous figures; basic service never depends on consent.\n",
          _table(["changes recorded from", "changes"], [list(r) for r in consent_changes]),
          "## Erasures (right to be forgotten)\n",
          f"{len(erasures)} erasure(s) in {year}. The ledger keeps a salted hash of each request, never the card "
          "number or the pseudonym.\n",
          _table(["date", "request (hash prefix)", "requested by", "named by", "rows removed", "landing files rewritten",
                  "kinds of files rewritten", "tables recomputed"], [list(r) for r in erasures]),
          "## Retention sweeps\n",
          f"{len(sweeps)} sweep(s) in {year}; landing files past their retention deleted, older rows de-linked from "
          "their reader (the row kept, the reader removed).\n",
          _table(["date", "sweep", "landing files deleted", "rows de-linked"], [list(r) for r in sweeps]),
          "## Checks that guard privacy\n",
          ("All passed at their latest run.\n" if checks and not failed else
           f"{len(failed)} failed at their latest run.\n" if failed else "No results recorded yet.\n"),
          _table(["check", "table", "passed", "rows found", "latest run (UTC)"], [list(r) for r in checks]),
          *_anchor_section(settings)]
    markdown = "\n".join(md)
    return Report(markdown, to_html(markdown, f"Transparency report {year}"))


def _anchor_section(settings: Settings) -> list[str]:
    """The audit trail's heads as this report is made: keep them to check later that no access,
    consent, erasure or ingest entry was rewritten (`shuku audit verify --anchor HEAD`)."""
    anchors = current_anchors(settings)
    if anchors is None:
        return ["## Audit trail\n", "The audit trail has no key yet (`shuku audit rekey`): its heads prove nothing.\n"]
    return ["## Audit trail\n",
            "The heads of the keyed, hash-chained logs when this report was made. Anyone who keeps them can later ask "
            "the library to run `shuku audit verify --anchor HEAD`: a log rewritten or cut back since no longer "
            "holds its head.\n",
            _table(["log", "entries", "head"], [[a.split(":")[0], a.split(":")[1], a.split(":")[2]] for a in anchors])]


def write_report(report: Report, out_dir: Path, stem: str) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    md_path, html_path = out_dir / f"{stem}.md", out_dir / f"{stem}.html"
    md_path.write_text(report.markdown, encoding="utf-8")
    html_path.write_text(report.html, encoding="utf-8")
    return md_path, html_path


def reader_holdings(settings: Settings, pid: str) -> dict[str, int]:
    """Rows per table that hold this reader (by pseudonym, or a quarantined line naming it)."""
    contracts = load_contracts()
    con = compute_connection(settings)
    counts = {}
    try:
        for name, contract in sorted(contracts.items()):
            if not has_data(settings, contract):
                continue
            if "patron_pid" in contract.column_names:
                n = con.execute(f"select count(*) from {name} where patron_pid = ?", [pid]).fetchone()[0]
            elif contract.layer == "quarantine":
                n = con.execute(f"select count(*) from {name} where contains(raw_text, ?) or contains(detail, ?)",
                                [pid, pid]).fetchone()[0]
            else:
                continue
            if n:
                counts[name] = n
    finally:
        con.close()
    return counts


def reader_report(settings: Settings, pid: str) -> str:
    """What the warehouse holds about one reader, as Markdown for the privacy officer to hand over."""
    contracts = load_contracts()
    holdings = reader_holdings(settings, pid)
    con = compute_connection(settings, ["core.dim_patron", CONSENT_TABLE])
    try:
        attributes = con.execute("select category_code, college, department, enrolment_year, profiling_consent "
                                 "from core.dim_patron where patron_pid = ?", [pid]).fetchall()
        consent = con.execute("select strftime(changed_at, '%Y-%m-%d %H:%M'), source, profiling, recommendations "
                              "from meta.consent where patron_pid = ? order by changed_at", [pid]).fetchall()
    finally:
        con.close()
    categories = []
    for name, rows in holdings.items():
        contract = contracts[name]
        kept = ", ".join(c.name for c in contract.columns if c.name not in ("source_file", "source_line"))
        categories.append([name, rows, contract.description, kept, _span(retention_days(contract))])
    md = ["# What the library's warehouse holds about you\n",
          f"Prepared {dt.date.today().isoformat()} by the privacy officer. Inside the warehouse you are known only by a "
          "pseudonym, never by your card number, name, e-mail or phone.\n",
          "## Your attributes\n",
          _table(["reader category", "college", "department", "enrolment year", "profiling consent"],
                 [list(a) for a in attributes]),
          "## Your consent\n",
          ("Your latest choice: profiling " + _cell(consent[-1][2]) + ", recommendations " + _cell(consent[-1][3])
           + ".\n") if consent else "No choice recorded; the patron export's answer applies.\n",
          _table(["changed (UTC)", "source", "profiling", "recommendations"], [list(c) for c in consent]),
          "## Records about you, by kind\n",
          f"{sum(holdings.values())} record(s) in {len(holdings)} table(s).\n",
          _table(["table", "records", "what it is", "what each record holds", "kept for"], categories),
          "You may ask the library to erase all of it (`shuku erase`); the erasure is recorded without your card "
          "number or pseudonym.\n"]
    return "\n".join(md)
