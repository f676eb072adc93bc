"""Commands that found nothing say so and exit non-zero: a home folder that does not exist, an
unknown table, a range without landing files, a file nothing of which was understood, a lock
another process holds for longer than a writer waits."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from pipelines.cli import main
from warehouse.lake.locks import LockTimeout, table_lock
from warehouse.lake.paths import lock_path
from warehouse.settings import REPO_ROOT, Settings

TURNSTILE_HEADER = "time,gate,direction,card,result"


@pytest.mark.parametrize("args", [
    ["status"], ["sql", "select 1"], ["trace", "marts.space_utilisation.occupancy_peak"], ["quality"],
    ["quality", "staging.gate_event"], ["alerts"], ["report", "library", "--out", "report.html"],
    ["report", "transparency"],
], ids=lambda a: " ".join(a[:2]))
def test_a_read_only_command_on_a_missing_home_says_so_and_creates_nothing(args, tmp_path, monkeypatch):
    home = tmp_path / "no-such-home"
    monkeypatch.setenv("SHUKU_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert f"SHUKU_HOME={home}" in result.output and "does not exist" in result.output
    assert not home.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == []        # no ./var, no report either


def test_quality_of_an_unknown_table_names_the_nearest(tmp_path, monkeypatch):
    Settings.from_env().ensure()
    result = CliRunner().invoke(main, ["quality", "gate_evnt"])
    assert result.exit_code == 2, result.output
    assert "no table gate_evnt (did you mean staging.gate_event" in result.output
    far = CliRunner().invoke(main, ["quality", "zzzz"])
    assert far.exit_code == 2 and "no table zzzz (`shuku status` lists the tables)" in far.output


def test_quality_of_a_known_table_without_failures_exits_0():
    Settings.from_env().ensure()
    for name in ("staging.gate_event", "gate_event"):
        result = CliRunner().invoke(main, ["quality", name])
        assert result.exit_code == 0, result.output
        assert f"No failing checks on {name}" in result.output


def test_run_on_a_range_without_landing_files_names_the_range_and_folders():
    settings = Settings.from_env().ensure()
    (settings.landing / "gates").mkdir()
    (settings.landing / "gates" / "turnstile_2025-09-01.csv").write_text(f"{TURNSTILE_HEADER}\n")
    result = CliRunner().invoke(main, ["run", "--from", "2025-10-01", "--to", "2025-10-05", "--select", "gates"])
    assert result.exit_code == 1, result.output
    assert "no landing files for 2025-10-01..2025-10-05 in landing/gates" in result.output
    assert not settings.dagster_home.joinpath("history").exists()        # no run was started
    everything = CliRunner().invoke(main, ["run", "--from", "2025-09-01", "--to", "2025-09-03", "--select", "holds"])
    assert everything.exit_code == 1 and "2025-09-01..2025-09-03 in landing/circulation" in everything.output


def test_run_with_an_empty_landing_folder_says_so():
    Settings.from_env().ensure()
    result = CliRunner().invoke(main, ["run"])
    assert result.exit_code == 1, result.output
    assert "no landing files at all in" in result.output and "landing/gates" in result.output


def test_parse_of_a_file_with_a_header_and_no_rows_exits_1(tmp_path):
    path = tmp_path / "turnstile_2025-09-01.csv"
    path.write_text(f"{TURNSTILE_HEADER}\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["parse", "gates", str(path)])
    assert result.exit_code == 1, result.output
    assert (f"{path}: empty (a header and no rows): a daily file without rows is usually a failed export"
            ) in " ".join(result.output.split())
    good = tmp_path / "turnstile_2025-09-02.csv"
    good.write_text(f"{TURNSTILE_HEADER}\n2025-09-02 08:00:03,MAIN-G1,IN,2023104512,PASS\n", encoding="utf-8")
    assert CliRunner().invoke(main, ["parse", "gates", str(good)]).exit_code == 0


def _hold_lock(settings: Settings, name: str) -> subprocess.Popen:
    """Another process holding a table's write lock until it is killed."""
    code = ("import sys, time\nfrom warehouse.settings import Settings\nfrom warehouse.lake.locks import table_lock\n"
            f"with table_lock(Settings.from_env(), {name!r}):\n    print('held', flush=True)\n    time.sleep(60)\n")
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True,
                              env={**os.environ, "SHUKU_HOME": str(settings.home)})
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_writer_that_waited_too_long_for_a_lock_names_its_holder(monkeypatch):
    settings = Settings.from_env().ensure()
    holder = _hold_lock(settings, "staging.gate_event")
    try:
        monkeypatch.setenv("SHUKU_LOCK_WAIT", "0.5")
        began = time.monotonic()
        with pytest.raises(LockTimeout) as raised:
            with table_lock(settings, "staging.gate_event"):
                pass
        assert 0.5 <= time.monotonic() - began < 5
        assert f"held by pid {holder.pid} on" in str(raised.value)
        assert str(lock_path(settings, "staging.gate_event")) in str(raised.value)
    finally:
        holder.kill()
        holder.wait()
    with table_lock(settings, "staging.gate_event"):       # free again once its holder is gone
        pass


@pytest.mark.slow
def test_shuku_run_that_gave_up_on_a_lock_exits_1_naming_the_holder(monkeypatch, library):
    import datetime as dt

    from generator import generate

    settings = Settings.from_env().ensure()
    monkeypatch.setenv("DAGSTER_HOME", str(settings.dagster_home))
    generate(settings.landing, library, scale="tiny", seed=7, start=dt.date(2025, 9, 1), days=1)
    holder = _hold_lock(settings, "staging.gate_event")
    try:
        monkeypatch.setenv("SHUKU_LOCK_WAIT", "1")
        result = CliRunner().invoke(main, ["run", "--select", "turnstile", "--no-models"], terminal_width=400)
    finally:
        holder.kill()
        holder.wait()
    assert result.exit_code == 1, result.output
    flat = " ".join(result.output.split())
    assert "ingest_turnstile: LockTimeout: staging.gate_event: waited 1 s" in flat
    assert f"held by pid {holder.pid} on" in flat
    assert not Path(settings.lake / "staging" / "gate_event").exists()


def test_a_lock_file_names_the_command_but_never_an_options_value(monkeypatch):
    settings = Settings.from_env().ensure()
    monkeypatch.setattr(sys, "argv", ["/opt/shuku/bin/shuku", "erase", "--card=20250012345", "--yes"])
    with table_lock(settings, "core.dim_patron"):
        held = lock_path(settings, "core.dim_patron").read_text(encoding="utf-8")
    assert "(shuku erase)" in held and "20250012345" not in held and "--card" not in held
