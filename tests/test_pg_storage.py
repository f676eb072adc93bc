"""Dagster's storage in PostgreSQL: a real server (Debian's postgresql, installed when missing)
started on 127.0.0.1 in a temporary folder, the PostgreSQL block of the repository's
dagster.yaml uncommented as it is documented, a real materialisation of the project's assets,
then the run, its events and its checks read back from that storage by a second instance."""

from __future__ import annotations

import datetime as dt
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as db
import yaml

from assets.feeds import FEEDS
from generator import generate
from pipelines.definitions import build_definitions
from pipelines.pg_storage import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage
from pipelines.runner import plan, run_stage
from warehouse.settings import REPO_ROOT, Settings

def _pg_bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else shutil.which(name)


def _ensure_postgresql() -> str:
    """The folder of initdb and pg_ctl, installing Debian's postgresql when it is missing."""
    if _pg_bin("initdb") is None:
        if os.geteuid() != 0:
            pytest.fail("PostgreSQL is not installed: `apt-get install postgresql` (Debian), or run CI's .ci/run as root")
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "postgresql"], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    return str(Path(_pg_bin("initdb")).parent)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def postgres_url(tmp_path):
    """A PostgreSQL server of its own on 127.0.0.1, stopped and removed after the test. PostgreSQL
    refuses to run as root, so as root it runs as the package's `postgres` user, in a folder
    that user may enter (pytest's tmp_path is private to root)."""
    bindir = _ensure_postgresql()
    as_root = os.geteuid() == 0
    base = Path(tempfile.mkdtemp(prefix="shuku-pg-")) if as_root else tmp_path / "pg"
    base.mkdir(exist_ok=True)
    if as_root:
        user = pwd.getpwnam("postgres")
        os.chown(base, user.pw_uid, user.pw_gid)
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    data, port = base / "data", _free_port()
    subprocess.run(prefix + [f"{bindir}/initdb", "-D", str(data), "-U", "shuku", "--auth=trust", "-E", "UTF8"],
                   check=True, capture_output=True)
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off"
    subprocess.run(prefix + [f"{bindir}/pg_ctl", "-D", str(data), "-l", str(base / "server.log"), "-o", options,
                             "-w", "-t", "60", "start"], check=True, capture_output=True)
    try:
        yield f"postgresql://shuku@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(prefix + [f"{bindir}/pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def _documented_postgres_block() -> dict:
    """The PostgreSQL block of dagster.yaml, uncommented exactly as its comment says."""
    lines = (REPO_ROOT / "dagster.yaml").read_text(encoding="utf-8").splitlines()
    start, end = lines.index("# --- postgres storage ---"), lines.index("# --- end postgres storage ---")
    return yaml.safe_load("\n".join(line.removeprefix("# ") for line in lines[start + 1:end]))


def test_a_url_that_is_not_postgresql_is_refused_with_what_to_do():
    with pytest.raises(ValueError, match=r"postgres_url must be a PostgreSQL URL .* got one starting 'sqlite'"):
        PostgresRunStorage("sqlite:////tmp/runs.db")


@pytest.mark.slow
def test_materialisation_with_dagster_storage_in_postgresql(postgres_url, tmp_path, monkeypatch, library):
    block = _documented_postgres_block()
    assert set(block) == {"run_storage", "event_log_storage", "schedule_storage"}
    config = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text(encoding="utf-8")) | block
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    monkeypatch.setenv("SHUKU_DAGSTER_POSTGRES_URL", postgres_url)

    settings = Settings(tmp_path / "home").ensure()
    generate(settings.landing, library, scale="tiny", seed=3, start=dt.date(2025, 9, 1), days=1)
    defs = build_definitions(settings, library)
    stage = plan(settings, None, None, list(FEEDS), models=False)[0]   # the patron and catalogue snapshots

    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        result = run_stage(defs, instance, stage)
        assert result.success, result.error
        run_id = result.run_id

    # A second instance, as another process or host would open it, reads everything back.
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
        assert run.tags["shuku/stage"] == stage.label
        for key in stage.assets:
            event = instance.get_latest_materialization_event(key)
            assert event is not None and event.run_id == run_id, key
            assert event.asset_materialization.metadata["dagster/row_count"].value > 0, key
        checks = [r.dagster_event.event_specific_data
                  for r in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)]
        assert checks and all(c.passed for c in checks)
        # the asset-check index (a table of its own) holds them too
        history = instance.event_log_storage.get_asset_check_execution_history(checks[0].asset_check_key, limit=5)
        assert [h.run_id for h in history] == [run_id]
        assert instance.get_runs(filters=dg.RunsFilter(tags={"shuku/stage": stage.label}))[0].run_id == run_id

    # And it is PostgreSQL that holds them, not a file in the Dagster home.
    engine = db.create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg2://"))
    with engine.connect() as conn:
        assert conn.execute(db.text("SELECT count(*) FROM runs WHERE run_id = :r"), {"r": run_id}).scalar() == 1
        events = conn.execute(db.text("SELECT count(*) FROM event_logs WHERE run_id = :r"), {"r": run_id}).scalar()
        assert events > 10
        assert conn.execute(db.text("SELECT count(*) FROM alembic_version")).scalar() == 1
        assert {"jobs", "job_ticks", "instigators"} <= set(db.inspect(conn).get_table_names())
    engine.dispose()
    assert not list(dagster_home.rglob("*.db"))
