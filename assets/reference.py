"""Reference dimensions built from the library config (days, zones, gates, reader categories,
the desk service standard, the sensitive classes), from the library's e-resource cost table, and
from maintained lists (disciplines and the classification prefixes mapped onto them). The marts
read the library's settings from these tables, so a setting reaches a figure through its lineage."""


import re
from pathlib import Path
from typing import Callable

import dagster as dg
import polars as pl
import yaml

from assets.table_asset import TableRun, Written, table_asset
from schemas.model import conform, contract_for
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
    # Typed by the contract, not guessed from the first rows: days before the first term have no term name.
    return pl.DataFrame(rows, schema=contract_for("core.dim_date").polars_schema())


def dim_zone_frame(library: Library) -> pl.DataFrame:
    return pl.DataFrame([
        {"zone_code": z.code, "zone_name": z.name, "branch_code": b.code, "branch_name": b.name, "seat_capacity": z.seats}
        for b in library.branches for z in b.zones])


def dim_gate_frame(library: Library) -> pl.DataFrame:
    rows = []
    for zone in library.zones:
        for kind, devices in (("gate", zone.gates), ("sensor", zone.sensors)):
            rows += [{"device_code": d, "device_kind": kind, "zone_code": zone.code, "branch_code": zone.branch_code}
                     for d in devices]
    return pl.DataFrame(rows)


def dim_reader_category_frame(library: Library) -> pl.DataFrame:
    return pl.DataFrame([{"category_code": k, "loan_period_days": v} for k, v in sorted(library.loan_periods.items())])


DISCIPLINES_FILE = Path(__file__).resolve().parent / "opac" / "disciplines.yaml"


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
    clc, *others = contract_for("core.discipline_map").column("scheme").allowed_values
    rows = [{"scheme": clc, "class_prefix": code, "discipline_code": code} for code in data["disciplines"]]
    for scheme in others:
        for prefix, code in data[scheme].items():
            if code not in codes:
                raise ValueError(f"{DISCIPLINES_FILE}: {scheme} class {prefix}: discipline {code!r} is not one of "
                                 f"the disciplines listed at the top of the file; correct it there.")
            rows.append({"scheme": scheme, "class_prefix": class_key(str(prefix)), "discipline_code": code})
    return pl.DataFrame(rows)


def dim_service_standard_frame(library: Library) -> pl.DataFrame:
    """What one desk staff member handles in an hour, and the fewest staff a desk has (one row)."""
    standard = library.service_standard
    return pl.DataFrame([{"transactions_per_staff_hour": float(standard.transactions_per_staff_hour),
                          "entries_per_staff_hour": float(standard.entries_per_staff_hour),
                          "minimum_staff": int(standard.minimum_staff)}])


def dim_sensitive_class_frame(library: Library) -> pl.DataFrame:
    """The CLC class prefixes kept out of reader profiles and recommendations."""
    return pl.DataFrame({"class_prefix": list(library.sensitive_classes)}, schema={"class_prefix": pl.String})


COSTS_FILE = "eresource_costs.yaml"        # beside the library config; optional


class CostTableError(ValueError):
    """The e-resource cost table cannot be read."""


def load_costs(path: Path) -> list[dict]:
    """Yearly costs from ``path`` (`costs: [{level, name, year, cost}]`); none when the file is absent."""
    if not path.exists():
        return []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise CostTableError(f"{path}: not valid YAML: {exc}") from None
    levels = contract_for("core.dim_eresource_cost").column("level").allowed_values
    rows = []
    for i, entry in enumerate(data.get("costs") or []):
        where = f"{path}: `costs[{i}]`"
        if not isinstance(entry, dict) or set(entry) - {"level", "name", "year", "cost"}:
            raise CostTableError(f"{where} must be a mapping with level, name, year and cost.")
        if entry.get("level") not in levels:
            raise CostTableError(f"{where}.level = {entry.get('level')!r}; use one of {', '.join(levels)}.")
        if not str(entry.get("name") or "").strip():
            raise CostTableError(f"{where}.name is empty; give the name as COUNTER reports it.")
        year, cost = entry.get("year"), entry.get("cost")
        if not isinstance(year, int) or isinstance(cost, bool) or not isinstance(cost, (int, float)) or cost < 0:
            raise CostTableError(f"{where}: year must be a year (2025) and cost a number ≥ 0, not {year!r}, {cost!r}.")
        rows.append({"level": entry["level"], "name": str(entry["name"]).strip(), "year": year, "cost": float(cost)})
    return rows


def costs_file(library: Library) -> Path:
    """The library's e-resource cost table: beside its config, optional."""
    return Path(library.source).parent / COSTS_FILE


def dim_eresource_cost_frame(library: Library) -> pl.DataFrame:
    """The yearly cost of each platform, database or title the library lists (none when it lists none)."""
    rows = [{"level": c["level"], "name": c["name"], "cost_year": c["year"], "cost": c["cost"]}
            for c in load_costs(costs_file(library))]
    return pl.DataFrame(rows, schema={"level": pl.String, "name": pl.String, "cost_year": pl.Int64, "cost": pl.Float64})


BUILDERS = {
    "dim_date": dim_date_frame,
    "dim_zone": dim_zone_frame,
    "dim_gate": dim_gate_frame,
    "dim_reader_category": dim_reader_category_frame,
    "dim_discipline": dim_discipline_frame,
    "discipline_map": discipline_map_frame,
    "dim_service_standard": dim_service_standard_frame,
    "dim_sensitive_class": dim_sensitive_class_frame,
    "dim_eresource_cost": dim_eresource_cost_frame,
}


def source_file(table: str, library: Library) -> Path:
    """The file a reference table is built from (for lineage): the library config, unless named here
    (the cost table when the library keeps one: without it the costs are empty by the config's say)."""
    costs = costs_file(library)
    return {"dim_discipline": DISCIPLINES_FILE, "discipline_map": DISCIPLINES_FILE,
            "dim_eresource_cost": costs if costs.exists() else Path(library.source)}.get(table, Path(library.source))


def _reference_asset(table: str, frame_of: Callable[[Library], pl.DataFrame]) -> dg.AssetsDefinition:
    contract = contract_for(f"core.{table}")

    def build(run: TableRun) -> Written:
        frame = conform(frame_of(run.library), contract)
        path, written = write_table_if_changed(run.settings, contract, frame)
        return Written(rows=frame.height, bytes=path.stat().st_size, files=1, metadata={"rewritten": written})

    return table_asset([contract.qualified_name], build, group="library", kinds={"polars", "parquet"},
                       source_path=lambda library: str(source_file(table, library)))


def build_reference_assets() -> list[dg.AssetsDefinition]:
    return [_reference_asset(table, build) for table, build in BUILDERS.items()]
