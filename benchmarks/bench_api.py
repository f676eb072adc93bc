"""The HTTP interface under load: many concurrent clients, latency percentiles, nothing lost.

    .venv/bin/python benchmarks/bench_api.py --clients 20 --requests 25

Builds a tiny warehouse in a temporary home (generated library, every stage, role databases),
starts `shuku serve`'s application with uvicorn on 127.0.0.1, and has each client (a thread
with its own token and connection) make a mix of requests: list datasets, read a page of a
mart, run a guarded query. Then checks that every request answered 200, that the access log
holds exactly one entry per request and that its hash chain verifies. The floor is the same
mix called in-process one after another (``run_guarded``, no HTTP, no concurrency).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")

import dagster as dg  # noqa: E402
import requests  # noqa: E402

from assets.feeds import FEEDS  # noqa: E402
from generator import generate  # noqa: E402
from pipelines.api import ApiLimits, create_app, rows_sql, running  # noqa: E402
from pipelines.definitions import build_definitions  # noqa: E402
from pipelines.runner import plan, run_stage  # noqa: E402
from schemas.model import contract_for  # noqa: E402
from schemas.roles import visible_columns  # noqa: E402
from warehouse.access import publish  # noqa: E402
from warehouse.audit import entries, verify  # noqa: E402
from warehouse.guard import run_guarded  # noqa: E402
from warehouse.library import load_library  # noqa: E402
from warehouse.settings import DEFAULT_LIBRARY_CONFIG, Settings  # noqa: E402
from warehouse.tokens import create_token  # noqa: E402

QUERY = "SELECT zone_code, max(occupancy_peak) AS peak FROM marts.space_utilisation GROUP BY ALL ORDER BY peak DESC"
MART = "marts.space_utilisation"


def build(settings: Settings, days: int) -> None:
    library = load_library(DEFAULT_LIBRARY_CONFIG)
    generate(settings.landing, library, scale="tiny", seed=7, start=dt.date(2025, 9, 1), days=days)
    defs = build_definitions(settings, library)
    instance = dg.DagsterInstance.ephemeral()
    for stage in plan(settings, None, None, list(FEEDS)):
        result = run_stage(defs, instance, stage)
        if not result.success:
            raise SystemExit(f"{stage.label} failed: {result.error}")
    publish(settings)


def client(url: str, token: str, n: int, latencies: list[float], statuses: list[int]) -> None:
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    for i in range(n):
        began = time.perf_counter()
        kind = i % 3
        if kind == 0:
            answer = session.get(f"{url}/api/v1/datasets", timeout=120)
        elif kind == 1:
            answer = session.get(f"{url}/api/v1/datasets/marts/space_utilisation/rows",
                                 params={"limit": 100, "offset": 100 * (i % 5)}, timeout=120)
        else:
            answer = session.post(f"{url}/api/v1/query", json={"sql": QUERY}, timeout=120)
        latencies.append(time.perf_counter() - began)
        statuses.append(answer.status_code)


def floor(settings: Settings, n: int) -> float:
    """The same mix in-process, one after another: the guard and DuckDB without HTTP."""
    contract = contract_for(MART)
    columns = [c.name for c in visible_columns("analyst", contract)]
    began = time.perf_counter()
    for i in range(n):
        if i % 3 == 1:
            run_guarded(settings, rows_sql(contract, columns, None, None, None, 100, 100 * (i % 5)), "analyst", "floor")
        elif i % 3 == 2:
            run_guarded(settings, QUERY, "analyst", "floor")
    return time.perf_counter() - began


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--requests", type=int, default=25, help="Requests per client.")
    parser.add_argument("--days", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shuku-bench-api-") as tmp:
        settings = Settings(Path(tmp) / "home").ensure()
        os.environ["SHUKU_HOME"] = str(settings.home)
        build(settings, args.days)
        tokens = [create_token(settings, "analyst", f"bench-{n}")[1] for n in range(args.clients)]
        before = len(entries(settings, "meta.access_log"))
        latencies: list[float] = []
        statuses: list[int] = []
        limits = ApiLimits(rate_per_s=1_000, burst=1_000)
        with running(create_app(settings, limits)) as url:
            requests.get(f"{url}/api/v1/datasets", headers={"Authorization": f"Bearer {tokens[0]}"}, timeout=120)
            warm = len(entries(settings, "meta.access_log"))
            threads = [threading.Thread(target=client, args=(url, t, args.requests, latencies, statuses)) for t in tokens]
            began = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - began
        total = args.clients * args.requests
        logged = len(entries(settings, "meta.access_log")) - warm
        chain = {r.log: r for r in verify(settings)}["meta.access_log"]
        floor_s = floor(settings, total)
        print(f"{args.clients} clients x {args.requests} requests = {total} (datasets, a page of {MART}, a query), "
              f"{os.cpu_count()} cores")
        print(f"answered {len(statuses)}, status 200: {statuses.count(200)}, access log entries added: {logged}, "
              f"chain {'verifies' if chain.ok else 'BROKEN: ' + str(chain.problem)}")
        print(f"wall {wall:.1f} s, {total / wall:.0f} requests/s")
        print("latency ms: " + ", ".join(f"p{p} {1000 * percentile(latencies, p):.0f}" for p in (50, 90, 99))
              + f", max {1000 * max(latencies):.0f}, mean {1000 * statistics.mean(latencies):.0f}")
        print(f"floor (the same mix in-process, sequential, no HTTP): {floor_s:.1f} s, "
              f"{1000 * floor_s / total:.1f} ms per request; HTTP wall / floor = {wall / floor_s:.2f}")
        lost = total - statuses.count(200)
        if lost or logged != total or not chain.ok or before > warm:
            raise SystemExit(f"FAILED: {lost} request(s) not answered 200, {logged} of {total} logged, "
                             f"chain ok: {chain.ok}")


if __name__ == "__main__":
    main()
