"""Reference dimensions built from the library config (days, zones, gates, reader categories)
and from maintained lists (disciplines and the classification prefixes mapped onto them)."""


import re
from pathlib import Path
from typing import Callable

import dagster as dg
import polars as pl
import yaml

from assets.table_asset import TableRun, Written, table_asset
from warehouse.contracts import conform, contract_for
from warehouse.lake.partitions import write_table_if_changed
from warehouse.library import Library


def dim_date_frame(library: Library) -> pl.DataFrame:
    """One row per day from the first partition to the end of the last term or holiday in the config."""
    last = max([t.end for t in library.terms] + [h.end for h in library.holidays] + [library.partitions_start])
    days = pl.date_range(library.partitions_start, last, "1d", eager=True).to_list()
    rows = []
    for day in days:
        term = library.term_of(day)
        hours = library.hours_on(day)
        holiday = library.is_holiday(day)
        rows.append({
            "date_key": day, "year": day.year, "month": day.month, "iso_week": day.isocalendar().week,
            "weekday": day.isoweekday(), "is_weekend": day.isoweekday() >= 6,
            "term_name": term.name if term else None, "is_exam_week": library.is_exam_week(day),
            "is_holiday": holiday,
            "open_hour": None if holiday else hours.open.hour,
            "close_hour": None if holiday else hours.close.hour + (1 if hours.close.minute else 0),
        })
    return pl.DataFrame(rows)


def dim_zone_frame(library: Library) -> pl.DataFrame:
    return pl.DataFrame([
        {"zone_code": z.code, "zone_name": z.name, "branch_code": b.code, "branch_name": b.name, "seat_capacity": z.seats}
        for b in library.branches for z in b.zones])


def dim_gate_frame(library: Library) -> pl.DataFrame:
    rows = []
    for zone in library.zones:
        rows += [{"device_code": g, "device_kind": "gate", "zone_code": zone.code, "branch_code": zone.branch_code} for g in zone.gates]
        rows += [{"device_code": s, "device_kind": "sensor", "zone_code": zone.code, "branch_code": zone.branch_code} for s in zone.sensors]
    return pl.DataFrame(rows)


def dim_reader_category_frame(library: Library) -> pl.DataFrame:
    return pl.DataFrame([{"category_code": k, "loan_period_days": v} for k, v in sorted(library.loan_periods.items())])


DISCIPLINES_FILE = Path(__file__).resolve().parent / "opac" / "disciplines.yaml"
SCHEMES = ("clc", "lc", "dewey")


def class_key(class_number: str) -> str:
    """A class number as the discipline map matches it: upper case, letters and digits only (as dim_title.sql)."""
    return re.sub(r"[^0-9A-Z]", "", class_number.upper())


def _disciplines() -> dict:
    return yaml.safe_load(DISCIPLINES_FILE.read_text(encoding="utf-8"))


def dim_discipline_frame(library: Library) -> pl.DataFrame:
    return pl.DataFrame([{"discipline_code": code, "name_zh": names["zh"], "name_en": names["en"]}
                         for code, names in _disciplines()["disciplines"].items()])


def discipline_map_frame(library: Library) -> pl.DataFrame:
    """(scheme, class_prefix, discipline_code): CLC top classes map to themselves, LC and Dewey as listed."""
    data = _disciplines()
    codes = set(data["disciplines"])
    rows = [{"scheme": "clc", "class_prefix": code, "discipline_code": code} for code in data["disciplines"]]
    for scheme in SCHEMES[1:]:
        for prefix, code in data[scheme].items():
            if code not in codes:
                raise ValueError(f"{DISCIPLINES_FILE}: {scheme} class {prefix}: discipline {code!r} is not one of "
                                 f"the disciplines listed at the top of the file; correct it there.")
            rows.append({"scheme": scheme, "class_prefix": class_key(str(prefix)), "discipline_code": code})
    return pl.DataFrame(rows)


BUILDERS = {
    "dim_date": dim_date_frame,
    "dim_zone": dim_zone_frame,
    "dim_gate": dim_gate_frame,
    "dim_reader_category": dim_reader_category_frame,
    "dim_discipline": dim_discipline_frame,
    "discipline_map": discipline_map_frame,
}
# The file each table is built from, when it is not the library config (for lineage).
SOURCE_FILES = {"dim_discipline": DISCIPLINES_FILE, "discipline_map": DISCIPLINES_FILE}


def _reference_asset(table: str, frame_of: Callable[[Library], pl.DataFrame]) -> dg.AssetsDefinition:
    contract = contract_for(f"core.{table}")

    def build(run: TableRun) -> Written:
        frame = conform(frame_of(run.library), contract)
        path, written = write_table_if_changed(run.settings, contract, frame)
        return Written(rows=frame.height, bytes=path.stat().st_size, files=1, metadata={"rewritten": written})

    return table_asset([contract.qualified_name], build, group="library", kinds={"polars", "parquet"},
                       source_path=lambda library: str(SOURCE_FILES.get(table, library.source)))


def build_reference_assets() -> list[dg.AssetsDefinition]:
    return [_reference_asset(table, build) for table, build in BUILDERS.items()]
