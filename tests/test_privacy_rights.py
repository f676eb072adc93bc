"""Readers' rights end to end on a tiny generated library (3 days, real Dagster, DuckDB and Parquet):
consent flowing to core.dim_patron, erasure leaving no trace while every other row and file stays
as it was, an interrupted erasure resumed, the retention sweep under a clock, and the reports.

The tests share one home folder and run in file order: each erasure and the sweep change it.
"""

import csv
import datetime as dt
import hashlib
import hmac
import io
import json
import re

import dagster as dg
import polars as pl
import pytest
from click.testing import CliRunner

from assets.feeds import FEEDS
from assets.privacy_assets import consent_registry, erasure_hooks
from generator import generate
from pipelines.cli import main
from pipelines.definitions import build_definitions
from pipelines.jobs import MODELS_JOB
from pipelines.runner import Stage, plan, run_stage
from schemas.model import contract_for
from warehouse.audit import verify as audit_verify
from warehouse.guarded import QueryFailed, QueryRefused, run_guarded
from warehouse.lake.paths import request_record, table_of_file
from warehouse.lake.views import compute_connection
from warehouse.privacy import pseudonymiser
from warehouse.privacy.consent import LATEST_SQL
from warehouse.privacy.erasure import ErasureInterrupted, erase, verify
from warehouse.privacy.erasure_journal import home_salt, pending
from warehouse.privacy.retention import recent_sweeps, sweep
from warehouse.settings import Settings
from warehouse.textio import read_text

# A three-day home with a persistent Dagster instance, built for this module alone (about a
# minute on two cores): CI runs it, the default suite does not.
pytestmark = pytest.mark.slow

START = dt.date(2025, 9, 1)
DAYS = 3
READER_TABLES = ("staging.circulation_event", "staging.gate_event", "staging.search", "staging.ezproxy_access")
QUARANTINES = ("quarantine.circulation", "quarantine.gates", "quarantine.searches", "quarantine.ezproxy")


def _sql(settings: Settings, sql: str, params: list | None = None) -> list[tuple]:
    con = compute_connection(settings)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _cli(settings: Settings, *args: str):
    """Run `shuku ARGS` on the module's home folder."""
    return CliRunner().invoke(main, list(args), env={"SHUKU_HOME": str(settings.home)})


def _models(defs, instance, *only: str) -> None:
    keys = [dg.AssetKey(name.split(".")) for name in only]
    result = run_stage(defs, instance, Stage("core tables and marts", MODELS_JOB, keys, None))
    assert result.success, result.error


@pytest.fixture(scope="module")
def home(tmp_path_factory, library):
    root = tmp_path_factory.mktemp("privacy")
    settings = Settings(root / "home").ensure()
    generate(settings.landing, library, scale="tiny", seed=7, start=START, days=DAYS)
    defs = build_definitions(settings)
    # A persistent SQLite instance under the home folder: erase --verify searches its event log too.
    instance = dg.DagsterInstance.local_temp(tempdir=str(settings.dagster_home), overrides={"telemetry": {"enabled": False}})
    stages = plan(settings, None, None, list(FEEDS))
    for stage in stages[:-1]:
        assert run_stage(defs, instance, stage).success, stage.label
    resources = {"shuku": defs.resources["shuku"]}
    assert dg.materialize([consent_registry], instance=instance, resources=resources).success
    _models(defs, instance)
    cards = {}
    for path in (settings.landing / "patrons").glob("patrons_*.csv*"):
        text, _ = read_text(path)
        cards |= {row["cardnumber"]: row for row in csv.DictReader(io.StringIO(text))}
    pids = {pseudonymiser(settings).pid(card): card for card in cards}
    return settings, defs, instance, pids, library


def _readers_everywhere(settings: Settings) -> list[tuple[str, bool]]:
    """Pseudonyms with loans, gate events, searches and EZproxy lines; whether a quarantined line names them."""
    joins = " ".join(f"join (select distinct patron_pid from {t}) using (patron_pid)" for t in READER_TABLES[1:])
    quarantined = " union all ".join(f"select raw_text from {q}" for q in QUARANTINES)
    return _sql(settings, f"""
        with q as (select distinct regexp_extract(raw_text, 'pid:([0-9a-f]{{64}})', 1) as pid from ({quarantined}))
        select c.patron_pid, q.pid is not null from (select distinct patron_pid from {READER_TABLES[0]}) as c {joins}
        left join q on q.pid = c.patron_pid
        order by q.pid is null, c.patron_pid""")


def _hashes(settings: Settings) -> dict[str, str]:
    return {str(p.relative_to(settings.home)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in settings.home.rglob("*") if p.is_file() and settings.dagster_home not in p.parents}


def _rows(settings: Settings, table: str, pid: str | None = None) -> list[tuple]:
    """Every row of a table (minus the reader's, when given), sorted, as comparable tuples."""
    where = "where patron_pid is distinct from ?" if pid else ""
    rows = _sql(settings, f"select * from {table} {where}", [pid] if pid else [])
    return sorted(rows, key=repr)


def test_consent_is_loaded_from_the_patron_export(home):
    settings, *_ = home
    registry = _sql(settings, "select count(*), count(distinct patron_pid), min(source) from meta.consent")[0]
    exported = _sql(settings, "select count(*) from staging.patron where profiling_consent is not null")[0][0]
    assert registry == (exported, exported, "patron_export")
    differ = _sql(settings, """select count(*) from core.dim_patron d join meta.consent c using (patron_pid)
                               where d.profiling_consent is distinct from c.profiling""")[0][0]
    assert differ == 0


def test_consent_change_flows_to_dim_patron_at_the_next_models_run(home):
    settings, defs, instance, pids, _ = home
    pid = _sql(settings, "select patron_pid from core.dim_patron where profiling_consent order by patron_pid limit 1")[0][0]
    card = pids[pid]
    before = _rows(settings, "core.dim_patron", pid)
    result = _cli(settings, "consent", "set", card, "--no-profiling")
    assert result.exit_code == 0, result.output
    assert card not in result.output and "profiling no" in result.output
    assert _sql(settings, "select profiling_consent from core.dim_patron where patron_pid = ?", [pid]) == [(True,)]
    _models(defs, instance, "core.dim_patron")
    assert _sql(settings, "select profiling_consent from core.dim_patron where patron_pid = ?", [pid]) == [(False,)]
    assert _rows(settings, "core.dim_patron", pid) == before          # nobody else changed
    # The export says yes again at the next load, but only a change in the export overrides the reader's choice.
    assert dg.materialize([consent_registry], instance=instance, resources={"shuku": defs.resources["shuku"]}).success
    shown = _cli(settings, "consent", "show", card)
    assert shown.exit_code == 0 and "profiling no" in shown.output.splitlines()[0], shown.output
    assert verify(settings, card=card) != []                          # not erased: found, by pseudonym
    assert not [w for w, _ in verify(settings, card=card) if w.startswith(("lake/meta/consent", "lineage"))
                and card in w]


def test_reader_report_lists_only_that_readers_records(home):
    settings, _, _, pids, _ = home
    pid, _ = _readers_everywhere(settings)[0]
    result = _cli(settings, "report", "reader", "--card", pids[pid])
    assert result.exit_code == 0, result.output
    for table in READER_TABLES:
        n = _sql(settings, f"select count(*) from {table} where patron_pid = ?", [pid])[0][0]
        assert f"| {table} | {n} |" in result.output
    assert pid not in result.output and pids[pid] not in result.output
    others = {p for (p,) in _sql(settings, "select patron_pid from core.dim_patron where patron_pid <> ?", [pid])}
    assert not any(p[:12] in result.output for p in others)


def test_erase_leaves_no_trace_and_everything_else_byte_identical(home):
    settings, _, _, pids, _ = home
    pid, quarantined = _readers_everywhere(settings)[0]
    assert quarantined, "the data has no reader with a quarantined line as well as loans, gates, searches, EZproxy"
    card = pids[pid]
    assert len(verify(settings, card=card)) > 10
    tables = ["staging.patron", *READER_TABLES, "core.dim_patron", "core.fact_loan", "core.fact_gate_event",
              "core.fact_search", "core.fact_eresource_access"]
    kept = {t: _rows(settings, t, pid) for t in tables}
    # A query naming the reader: the access log keeps it with the pseudonym taken out, so the erasure
    # finds nothing of the reader there.
    with pytest.raises(QueryRefused):
        run_guarded(settings, f"SELECT count(*) FROM core.fact_loan WHERE patron_pid = '{pid}'", "analyst", "analyst-1")
    before = _hashes(settings)

    result = _cli(settings, "erase", "--card", card, "--yes", "--requested-by", "privacy-officer")
    assert result.exit_code == 0, result.output
    assert card not in result.output and pid not in result.output

    checked = _cli(settings, "erase", "--verify", card)
    assert checked.exit_code == 0, checked.output
    assert verify(settings, card=card) == []
    for table in tables:
        assert _rows(settings, table) == kept[table], table           # every other reader's row as it was

    ledger = _sql(settings, "select * from meta.erasure_ledger")
    assert len(ledger) == 1
    (row,) = pl.DataFrame(_sql(settings, "select rows_removed, landing_files, partitions_rewritten, models_rebuilt, "
                                         "request_hash, requested_by, requested_with from meta.erasure_ledger"),
                          orient="row").rows()
    removed, landing, partitions, rebuilt, digest, by, kind = row
    removed = json.loads(removed)
    assert by == "privacy-officer" and kind == "card" and len(digest) == 64 and digest != pid
    for table in READER_TABLES:
        assert removed[table] > 0, table
    assert any(t.startswith("quarantine.") for t in removed)
    assert {"core.dim_patron", "core.fact_loan", "marts.space_utilisation"} <= set(rebuilt)

    # Only the files the ledger counts (and what is rebuilt from them) changed; every other file is byte-identical.
    # The ledger dates nothing: kinds of files and counts, and a salted digest of the landing files it rewrote.
    after = _hashes(settings)
    changed = {f for f in before if before[f] != after.get(f)}
    proof = json.loads(landing)
    assert not re.search(r"[0-9]{4}-?[0-9]{2}", " ".join([*proof["kinds"], *partitions])), (landing, partitions)
    landing_files = {f for f in changed if f.startswith("landing/")}
    listing = "\n".join(sorted(f"{f[len('landing/'):]}\t{before[f]}\t{after[f]}" for f in landing_files))
    assert proof["digest"] == hmac.new(home_salt(settings), listing.encode(), "sha256").hexdigest()
    assert sum(k["files"] for k in proof["kinds"].values()) == len(landing_files)
    assert any(f.endswith(".gz") for f in landing_files) and any("patrons/" in f for f in landing_files)
    named = {p.rsplit(" (", 1)[0]: int(p.rsplit(" (", 1)[1].split()[0]) for p in partitions}
    partitions = {f for f in changed if table_of_file(settings, settings.home / f) in named}
    counted: dict[str, int] = {}
    for f in partitions:
        counted[table_of_file(settings, settings.home / f)] = counted.get(table_of_file(settings, settings.home / f), 0) + 1
    ledger = {t: n for t, n in named.items() if "." in t and "/" not in t}
    # staging partitions are rewritten where the reader's rows were: each one changed. A model's
    # partitions are rebuilt from them, with the days that look back at them (below): one may come
    # out byte-identical, another change without holding the reader (a day that looks back at one).
    assert {t: n for t, n in ledger.items() if t.startswith("staging.")} == \
        {t: n for t, n in counted.items() if t.startswith("staging.")}
    assert set(counted) <= set(ledger), (ledger, counted)
    # A rebuilt model rewrites its file, or (partitioned by day) the days whose inputs the erasure
    # rewrote and the days that look back at them.
    rewritten_days = {dt.date.fromisoformat(f.split("=")[1][:10]) for f in partitions if "_date=" in f}
    assert rewritten_days
    rebuilt_files = set()
    for model in rebuilt:
        contract, folder = contract_for(model), f"lake/{model.replace('.', '/')}"
        if contract.partition_column is None:
            rebuilt_files.add(f"{folder}/part-0.parquet")
            continue
        rebuilt_files |= {f"{folder}/{contract.partition_column.name}={day + dt.timedelta(days=n)}/part-0.parquet"
                          for day in rewritten_days for n in range(contract.lookback_days + 1)}
    expected = landing_files | set(partitions) | rebuilt_files
    expected |= {f"lake/meta/file_checksums/{f}" for f in expected}   # a rewritten file's checksum with it
    # Besides: the role databases, the consent registry, the records of what each model was
    # built from (sizes and modification times of files), the lock files (their last holder), the
    # data dictionary written at publish (its examples read from the lake) and the tables' state
    # record shuku status reads.
    unexpected = {f for f in changed - expected
                  if not f.startswith(("access/", "lake/meta/consent/", "lake/meta/model_inputs/", "locks/", "docs/"))
                  and f not in ("warehouse.duckdb", "table_state.json")}
    assert not unexpected, sorted(unexpected)
    new = set(after) - set(before)
    assert all(f.startswith(("lake/meta/consent/", "lake/meta/erasure_ledger/")) or f == "secrets/erasure.salt"
               for f in new), sorted(new)
    assert not [f for f in after if "/.tmp-" in f]
    assert not pending(settings)
    tombstones = _sql(settings, "select count(*) from meta.consent where source = 'erasure' and erasure_hash = ?", [digest])
    assert tombstones == [(1,)]
    # The chained logs still verify: the ledger row lists exactly the entries the erasure removed or redacted.
    audit = {r.log: r for r in audit_verify(settings)}
    assert all(r.ok for r in audit.values()), [r.problem for r in audit.values()]
    assert audit["meta.consent"].erased == removed.get("meta.consent", 0) and audit["meta.access_log"].erased == 0
    # Files that do not hold the reader were not touched: the unaffected staging partitions, MARC, COUNTER.
    untouched = [f for f in before if f.startswith(("landing/catalogue", "landing/counter", "lake/staging/bib_record"))]
    assert untouched and all(before[f] == after[f] for f in untouched)


def test_interrupted_erasure_resumes_and_completes(home):
    settings, _, _, pids, library = home
    pid, _ = _readers_everywhere(settings)[0]
    card = pids[pid]
    with pytest.raises(ErasureInterrupted, match="after step 2"):
        erase(settings, erasure_hooks(library), pid=pid, stop_after=2)
    journal = pending(settings)
    assert len(journal) == 1 and card not in journal[0].read_text()
    state = json.loads(journal[0].read_text())
    assert [s for s, v in state["steps"].items() if v["done"]] == ["landing", "lake"]
    assert verify(settings, card=card)         # the journal still names the pseudonym until the end
    result = _cli(settings, "erase", "--resume")
    assert result.exit_code == 0, result.output
    assert "erased" in result.output
    assert verify(settings, card=card) == [] and not pending(settings)
    ledger = _sql(settings, "select requested_with, rows_removed_count, landing_files_count from meta.erasure_ledger "
                            "order by erased_at")
    assert len(ledger) == 2 and ledger[1][0] == "pid" and ledger[1][1] > 0 and ledger[1][2] > 0


def test_retention_sweep_delinks_old_reader_data_and_deletes_old_landing_files(home):
    settings, *_ = home
    counts = dict(_sql(settings, "select event_date, count(*) from staging.gate_event group by 1"))
    loans = _sql(settings, "select count(*), count(patron_pid) from core.fact_loan")[0]
    # Gate events are kept a year (365 days): on 2026-09-02 the first day is past it, the second is not.
    assert list(settings.access_dir.glob(".*.sources.json"))
    # a request record kept beside a landing file (as the COUNTER harvest keeps one) goes with the file
    record = request_record(settings.landing / "ezproxy" / "ezproxy_2025-09-01.log.gz")
    record.write_text("{}")
    outcome = sweep(settings, FEEDS, now=dt.datetime(2026, 9, 2, 12, 0))
    assert not record.exists()
    # The published files are built afresh next time: a copy of the old one could keep the delinked ids.
    assert not list(settings.access_dir.glob(".*.sources.json"))
    assert _sql(settings, "select event_date, count(*), count(patron_pid), count(pid_key_version) from staging.gate_event "
                          "group by 1 order by 1") == [
        (START, counts[START], 0, 0),
        (START + dt.timedelta(days=1), counts[START + dt.timedelta(days=1)], counts[START + dt.timedelta(days=1)],
         counts[START + dt.timedelta(days=1)]),
        (START + dt.timedelta(days=2), counts[START + dt.timedelta(days=2)], counts[START + dt.timedelta(days=2)],
         counts[START + dt.timedelta(days=2)])]
    assert _sql(settings, "select count(*) from core.fact_gate_event where event_date = ? and patron_pid is not null",
                [START]) == [(0,)]
    assert _sql(settings, "select count(*), count(patron_pid) from core.fact_loan")[0] == loans     # kept 5 years
    landing = sorted(p.name for p in (settings.landing / "gates").iterdir())
    assert "turnstile_2025-09-01.csv.gz" not in landing and "turnstile_2025-09-02.csv.gz" in landing
    assert "counter_2025-09-01.csv" in landing         # people counts feed a 5-year table
    assert not (settings.landing / "ezproxy" / "ezproxy_2025-09-01.log.gz").exists()
    assert outcome.files_deleted == 2 and outcome.rows_delinked > 0
    assert recent_sweeps(settings)[0]["rows_delinked"] == outcome.rows_delinked
    status = _cli(settings, "status")
    assert "retention sweeps" in status.output, status.output


def test_transparency_report_counts_what_happened(home, tmp_path):
    settings, *_ = home
    year = dt.date.today().year
    assert _cli(settings, "sql", "--role", "analyst", "select count(*) from core.fact_loan").exit_code == 0
    result = _cli(settings, "report", "transparency", "--year", str(year), "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    md = (tmp_path / f"transparency-{year}.md").read_text(encoding="utf-8")
    page = (tmp_path / f"transparency-{year}.html").read_text(encoding="utf-8")
    assert "2 erasure(s)" in md and "<table>" in page
    assert "| core.fact_loan | `patron_pid` (quasi, hmac, confidential)" in md
    assert "| analyst | allowed | 1 | 1 | core.fact_loan |" in md
    readers = _sql(settings, "select count(distinct patron_pid) from meta.consent where patron_pid is not null")[0][0]
    no = _sql(settings, f"select count(*) from ({LATEST_SQL}) where not profiling")[0][0]
    assert f"{readers} reader(s) had a recorded choice" in md and f"no {no};" in md
    assert "| shuku consent set | 1 |" in md and "| erasure | 2 |" in md
    swept = _cli(settings, "report", "transparency", "--year", "2026", "--out", str(tmp_path))
    assert swept.exit_code == 0
    assert "1 sweep(s) in 2026" in (tmp_path / "transparency-2026.md").read_text(encoding="utf-8")
    assert "no_card_numbers" in md


LOGS = ("alerts/", "lake/meta/access_log/", "lake/meta/erasure_ledger/", "lake/meta/ingest_log/",
        "lake/meta/retention_log/", "lake/meta/lineage_runs/", "lineage/")   # the consent registry is no log


def test_no_card_number_or_pseudonym_of_a_reader_reaches_a_log(home):
    """After the pipeline run, an erasure (above) and queries naming a reader by card and by
    pseudonym, allowed, refused and failing, no log under the home holds that reader."""
    settings, _, _, pids, _ = home
    pid = _sql(settings, "select patron_pid from core.dim_patron order by patron_pid limit 1")[0][0]
    card = pids[pid]
    for sql, role in [(f"SELECT count(*) FROM core.fact_loan WHERE patron_pid = '{pid}'", "analyst"),
                      (f"SELECT count(*) FROM core.fact_loan WHERE patron_pid = '{pid.upper()}'", "privacy_officer"),
                      (f"SELECT count(*) FROM core.dim_patron WHERE patron_pid = '{card}'", "analyst"),
                      (f"SELECT CAST('{pid}' AS INTEGER)", "privacy_officer")]:
        try:
            run_guarded(settings, sql, role, "leak-test")
        except (QueryRefused, QueryFailed):
            pass
    logged = _sql(settings, "select sql_text, reason from meta.access_log where user_name = 'leak-test'")
    assert len(logged) == 4 and all("<pseudonym>" in t or "<card number>" in t for t, _ in logged), logged
    found = [w for w in verify(settings, card=card) + verify(settings, pid=pid) if w[0].startswith(LOGS)]
    assert found == []
