"""The published figures as the generator's ground truth says they should be.

Counts over the truth files (generator.truth) with polars, never the pipeline's SQL. With
`delivered` (the default) only events whose landing line is intact count: that is what the
pipeline can see; without it, everything that happened.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from warehouse.library import Library

TOP = 10                                   # a top list's length
KEY_FIGURES = ("visits", "loans", "active_readers", "eresource_requests", "ezproxy_accesses", "searches",
               "zero_hit_searches")


def read(root: Path, pattern: str) -> pl.DataFrame:
    """Every truth file matching `pattern` under `root`, as one frame."""
    files = sorted(Path(root).glob(pattern))
    return pl.concat([pl.read_parquet(f) for f in files], how="vertical_relaxed") if files else pl.DataFrame()


def _kept(frame: pl.DataFrame, delivered: bool) -> pl.DataFrame:
    return frame.filter(pl.col("intact")) if delivered else frame


def _month(column: str) -> pl.Expr:
    return pl.col(column).dt.truncate("1mo").cast(pl.Date).alias("month_start")


def key_figures(root: Path, *, delivered: bool = True) -> pl.DataFrame:
    """Per month (and per year: month null) the figures of marts.key_figures."""
    passes = _kept(read(root, "gates/passages_*.parquet"), delivered).filter(
        (pl.col("result") == "PASS") & (pl.col("direction") == "IN")).select(_month("at"), "reader")
    loans = _kept(read(root, "circulation/loans_*.parquet"), delivered).select(_month("issued_at"), "reader")
    searches = _kept(read(root, "opac/searches_*.parquet"), delivered).select(_month("at"), "hits")
    proxy = read(root, "ezproxy/accesses_*.parquet").select(
        _month("event_date"), pl.col("accesses_delivered" if delivered else "accesses").alias("n"))
    usage = read(root, "counter/usage_*.parquet").filter(
        (pl.col("level") == "platform") & (pl.col("metric") == "Total_Item_Requests")).select(
        pl.col("usage_month").alias("month_start"), "value")
    readers = pl.concat([passes, loans])
    rows = []
    months = sorted(set(passes["month_start"]) | set(loans["month_start"]) | set(searches["month_start"])
                    | set(proxy["month_start"]) | set(usage["month_start"]))
    for year in sorted({m.year for m in months}):
        for month in [m for m in months if m.year == year] + [None]:
            def of(frame: pl.DataFrame) -> pl.DataFrame:
                if month is None:
                    return frame.filter(pl.col("month_start").dt.year() == year)
                return frame.filter(pl.col("month_start") == month)
            rows.append({
                "year": year, "month": None if month is None else month.month,
                "visits": of(passes).height, "loans": of(loans).height,
                "active_readers": of(readers)["reader"].n_unique(),
                "eresource_requests": int(of(usage)["value"].sum()),
                "ezproxy_accesses": int(of(proxy)["n"].sum()),
                "searches": of(searches).height,
                "zero_hit_searches": of(searches).filter(pl.col("hits") == 0).height})
    return pl.DataFrame(rows, schema={"year": pl.Int64, "month": pl.Int64, **{k: pl.Int64 for k in KEY_FIGURES}})


def _ranked(counts: pl.DataFrame, group: list[str], order: list[str], descending: list[bool]) -> pl.DataFrame:
    return counts.sort(group + order, descending=[False] * len(group) + descending).with_columns(
        rank=pl.int_range(1, pl.len() + 1).over(group).cast(pl.Int64))


def circulation_top(root: Path, discipline_of: dict[str, str] | None = None, *, delivered: bool = True
                    ) -> pl.DataFrame:
    """Per month and scope (overall, reader category, and discipline when `discipline_of`
    maps bib ids to disciplines) the top titles by loans, then readers, then bib id, with
    the rank the title had the month before."""
    loans = _kept(read(root, "circulation/loans_*.parquet"), delivered).select(
        pl.col("issued_at").dt.truncate("1mo").cast(pl.Date).alias("loan_month"), "bib_id", "reader",
        "category_code")
    scoped = [loans.with_columns(scope=pl.lit("overall"), scope_value=pl.lit("all")),
              loans.with_columns(scope=pl.lit("category"), scope_value=pl.col("category_code"))]
    if discipline_of is not None:
        scoped.append(loans.with_columns(scope=pl.lit("discipline"),
                                         scope_value=pl.col("bib_id").replace_strict(discipline_of, default=None))
                      .filter(pl.col("scope_value").is_not_null()))
    group = ["loan_month", "scope", "scope_value"]
    counts = pl.concat([s.drop("category_code") for s in scoped]).group_by(group + ["bib_id"]).agg(
        loans=pl.len().cast(pl.Int64), readers=pl.col("reader").n_unique().cast(pl.Int64))
    ranked = _ranked(counts, group, ["loans", "readers", "bib_id"], [True, True, False])
    previous = ranked.select(
        pl.col("loan_month").dt.offset_by("1mo").alias("loan_month"), "scope", "scope_value", "bib_id",
        pl.col("rank").alias("previous_rank"))
    return (ranked.filter(pl.col("rank") <= TOP)
            .join(previous, on=group + ["bib_id"], how="left").sort(group + ["rank"]))


def zone_hours(root: Path, *, delivered: bool = True) -> pl.DataFrame:
    """Per zone, day and hour: PASS entries and exits, the true peak of people inside, and
    `clean`: no turnstile line of that zone and day was damaged (the peak is then exactly
    what the turnstile lines say)."""
    passages = read(root, "gates/passages_*.parquet").with_columns(
        event_date=pl.col("at").dt.date(), event_hour=pl.col("at").dt.hour().cast(pl.Int64))
    damaged = passages.filter(~pl.col("intact")).select("zone_code", "event_date").unique()
    moves = _kept(passages, delivered).filter(pl.col("result") == "PASS").group_by(
        "zone_code", "event_date", "event_hour").agg(
        entries=(pl.col("direction") == "IN").sum().cast(pl.Int64),
        exits=(pl.col("direction") == "OUT").sum().cast(pl.Int64))
    true = read(root, "gates/zone_hours_*.parquet").select(
        "zone_code", "event_date", "event_hour", "occupancy_at_start", "occupancy_peak")
    keys = ["zone_code", "event_date", "event_hour"]
    return (true.join(moves, on=keys, how="full", coalesce=True)
            .with_columns(pl.col("entries", "exits").fill_null(0))
            .join(damaged.with_columns(dirty=pl.lit(True)), on=["zone_code", "event_date"], how="left")
            .with_columns(clean=pl.col("dirty").is_null()).drop("dirty").sort(keys))


def seat_demand(root: Path, library: Library) -> pl.DataFrame:
    """Per branch, day and hour: seats in use at the hour's peak (the zones' peaks summed),
    and `clean` when no zone of the branch had a damaged turnstile line that day."""
    branch_of = {z.code: z.branch_code for z in library.zones}
    hours = zone_hours(root).with_columns(branch_code=pl.col("zone_code").replace_strict(branch_of))
    return hours.group_by("branch_code", "event_date", "event_hour").agg(
        demand=pl.col("occupancy_peak").fill_null(0).sum().cast(pl.Int64), clean=pl.col("clean").all()
    ).sort("branch_code", "event_date", "event_hour")


# The lists of eresource_top_monthly made from COUNTER reports. The proxy's lists of titles and
# items (ezproxy_title, ezproxy_item) have no truth here: the generator does not record which
# title or article an access consulted; they are held to ezPAARSE's own test log instead.
COUNTER_LEVELS = ("platform", "database", "title")


def eresource_top(root: Path, *, delivered: bool = True) -> pl.DataFrame:
    """Per month and level (platform, database, title) the top ten by Total_Item_Requests, then
    Total_Item_Investigations, then name and platform; with the EZproxy accesses beside each
    platform."""
    usage = read(root, "counter/usage_*.parquet").filter(pl.col("level").is_in(COUNTER_LEVELS))
    # A title is one platform's: two platforms may carry journals of the same name.
    wide = usage.group_by("usage_month", "level", "platform", "name").agg(
        **{column: pl.col("value").filter(pl.col("metric") == metric).sum().cast(pl.Int64) for column, metric in (
            ("total_item_requests", "Total_Item_Requests"), ("total_item_investigations", "Total_Item_Investigations"),
            ("unique_item_requests", "Unique_Item_Requests"))})
    ranked = _ranked(wide, ["usage_month", "level"],
                     ["total_item_requests", "total_item_investigations", "name", "platform"],
                     [True, True, False, False]).filter(pl.col("rank") <= TOP)
    proxy = read(root, "ezproxy/accesses_*.parquet").group_by(
        pl.col("event_date").dt.truncate("1mo").cast(pl.Date).alias("usage_month"), pl.col("platform").alias("name")
    ).agg(pl.col("accesses_delivered" if delivered else "accesses").sum().cast(pl.Int64).alias("ezproxy_accesses"))
    return (ranked.join(proxy, on=["usage_month", "name"], how="left")
            .with_columns(ezproxy_accesses=pl.when(pl.col("level") == "platform")
                          .then(pl.col("ezproxy_accesses").fill_null(0)))
            .sort("usage_month", "level", "rank"))
