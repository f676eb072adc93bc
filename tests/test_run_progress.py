"""`shuku run`'s progress and summary, piped: a plain line per stage and step (no bar), the
partitions prepared of the range's, and a summary whose counts are the lake's own."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from click.testing import CliRunner

from pipelines.cli import main
from tests.published import SHARED_DAYS, SHARED_START, copied_home, published_home
from warehouse.lake.views import compute_connection

DAY, LAST = SHARED_START.isoformat(), (SHARED_START + dt.timedelta(days=SHARED_DAYS - 1)).isoformat()


@pytest.mark.slow   # one real Dagster run of the gates' days: about 20 s
def test_a_piped_run_names_its_steps_and_sums_up(tmp_path, tmp_path_factory, library, monkeypatch):
    home = copied_home(published_home(tmp_path_factory, library), tmp_path / "home")
    monkeypatch.setenv("SHUKU_HOME", str(home.home))
    result = CliRunner().invoke(main, ["run", "--select", "gates", "--no-models", "--from", DAY, "--to", LAST])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert f"daily feeds {DAY}..{LAST}: started" in lines
    steps = [line for line in lines if line.startswith("   ok ingest_")]
    assert sorted(s.split()[1] for s in steps) == ["ingest_gate_counter", "ingest_turnstile"], lines
    assert steps[-1].split("(")[1].startswith(f"partitions {2 * SHARED_DAYS}/{2 * SHARED_DAYS}, ")
    assert not any("━" in line for line in lines)                       # no bar when piped
    done = re.search(r"^done in \d+ s: (\d+) table\(s\) changed, ([\d,]+) rows written, ([\d,]+) line\(s\) "
                     r"quarantined, (\d+) check\(s\) failed", result.output, re.M)
    assert done, result.output
    con = compute_connection(home)
    try:
        # Each day's events, once: a run over a range reports one materialisation per partition.
        rows = sum(con.execute(f"select count(*) from staging.{t} where event_date between ? and ?",
                               [DAY, LAST]).fetchone()[0] for t in ("gate_event", "gate_count"))
        quarantined = con.execute("select count(*) from quarantine.gates where partition_key between ? and ?",
                                  [DAY, LAST]).fetchone()[0]
    finally:
        con.close()
    assert int(done[1]) == 2 and int(done[2].replace(",", "")) == rows
    assert int(done[3].replace(",", "")) == quarantined
