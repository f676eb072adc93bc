"""Governance contracts: ODCS v3.1 YAML files, validated twice, loaded into typed models.

Each file is checked against the ODCS JSON Schema shipped by `open-data-contract-standard`
(errors name the file and the YAML path; a text that passed once is remembered by its digest in
the user's cache, ``SHUKU_CACHE_DIR`` or ``~/.cache/shuku``), then parsed into its pydantic model, then into
the small `Contract` view the rest of Shuku uses. Everything typed — DuckDB columns,
polars dtypes, Dagster column schemas — is derived from here and nowhere else.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from importlib import resources
from pathlib import Path

import polars as pl
import yaml

from schemas import CONTRACTS_DIR
from schemas.vocabulary import LAYERS, LEVELS, PARTITIONINGS

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)   # libyaml when the wheel has it

# DuckDB physical type → polars dtype. The one mapping between the two engines.
POLARS_TYPES: dict[str, pl.DataType] = {
    "VARCHAR": pl.Utf8(),
    "DATE": pl.Date(),
    "TIMESTAMP": pl.Datetime("us"),
    "BIGINT": pl.Int64(),
    "INTEGER": pl.Int32(),
    "BOOLEAN": pl.Boolean(),
    "DOUBLE": pl.Float64(),
    "VARCHAR[]": pl.List(pl.Utf8()),
}


class ContractError(ValueError):
    """A contract file is invalid. The message names the file and the YAML path."""


class ContractViolation(ValueError):
    """Data does not match its table's contract. The message is a readable diff."""


@dataclass(frozen=True)
class Column:
    name: str
    logical_type: str
    physical_type: str
    description: str
    classification: str
    required: bool
    unique: bool
    primary_key: bool
    partitioned: bool
    options: dict
    pii: str
    masking: str | None
    allowed_values: tuple[str, ...] | None
    custom: dict = field(default_factory=dict, compare=False)   # every customProperty, by name

    @property
    def min_cell_size(self) -> int | None:
        """Published to the public role only when at least this large (disclosure control)."""
        value = self.custom.get("minCellSize")
        return None if value is None else int(value)

    @property
    def polars_type(self) -> pl.DataType:
        return POLARS_TYPES[self.physical_type]


@dataclass(frozen=True)
class Contract:
    layer: str
    table: str
    description: str
    owner: str
    columns: tuple[Column, ...]
    partitioning: str | None          # DAY, MONTH or None (schemas.vocabulary)
    freshness_days: float | None
    retention_years: float | None
    path: Path
    data: dict | None = field(default=None, compare=False, repr=False)   # the contract file as parsed
    custom: dict = field(default_factory=dict, compare=False)   # the table's customProperties

    @cached_property
    def model(self):
        """The contract as the ODCS pydantic model (built on first use: importing the ODCS models is a
        fifth of a short command's time, and most commands need only the fields above)."""
        return _odcs_model(self.data)

    @property
    def qualified_name(self) -> str:
        return f"{self.layer}.{self.table}"

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def column(self, name: str) -> Column:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.qualified_name} has no column {name!r}")

    def allowed_values(self, name: str) -> tuple[str, ...]:
        """The values column ``name`` may take (its ``invalidValues`` rule): what parsers accept and generators draw."""
        allowed = self.column(name).allowed_values
        if allowed is None:
            raise KeyError(f"{self.qualified_name}.{name} lists no allowed values; add an invalidValues rule to {self.path.name}")
        return allowed

    @property
    def partition_column(self) -> Column | None:
        return next((c for c in self.columns if c.partitioned), None)

    @property
    def lookback_days(self) -> int:
        """Days before a partition that its rows are computed from too (a day-partitioned model
        whose window reaches across midnight): the table property ``partitionLookbackDays``."""
        return int(self.custom.get("partitionLookbackDays") or 0)

    @property
    def primary_key(self) -> list[str]:
        return [c.name for c in self.columns if c.primary_key]

    def polars_schema(self) -> dict[str, pl.DataType]:
        return {c.name: c.polars_type for c in self.columns}

    def empty_frame(self) -> pl.DataFrame:
        return pl.DataFrame(schema=self.polars_schema())


@lru_cache(maxsize=1)
def _odcs_validator():
    """The ODCS JSON Schema's validator (jsonschema is imported only when a contract text is new)."""
    import jsonschema

    text = resources.files("open_data_contract_standard").joinpath("schema.json").read_text(encoding="utf-8")
    return jsonschema.Draft201909Validator(json.loads(text))


def _odcs_model(data: dict):
    from open_data_contract_standard.model import OpenDataContractStandard

    return OpenDataContractStandard.model_validate(data)


def _custom(props: list | None) -> dict:
    """``customProperties`` (or ``slaProperties``) as a dict by property name."""
    return {p["property"]: p.get("value") for p in props or () if p.get("property")}


def _yaml_path(error) -> str:
    parts = []
    for part in error.absolute_path:
        parts.append(f"[{part}]" if isinstance(part, int) else f".{part}")
    return "".join(parts).lstrip(".") or "(top level)"


def _validated_marks() -> Path:
    """Where contract texts that passed the ODCS JSON Schema are remembered (parsed, by digest), so a
    short command (`shuku sql`) does not parse and validate every unchanged file again (most of its time)."""
    base = os.environ.get("SHUKU_CACHE_DIR") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "shuku"
    return Path(base) / "odcs-valid"


@lru_cache(maxsize=1)
def _schema_digest() -> str:
    return hashlib.sha256(resources.files("open_data_contract_standard").joinpath("schema.json").read_bytes()).hexdigest()


def _validated(path: Path, text: str):
    """The contract's data parsed from ``text`` and checked against the ODCS JSON Schema; what was
    remembered when this very text passed under this very schema before."""
    mark = _validated_marks() / hashlib.sha256(f"{_schema_digest()}\n{text}".encode("utf-8")).hexdigest()
    try:
        return json.loads(mark.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    try:
        data = yaml.load(text, Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        raise ContractError(f"{path}: not valid YAML: {exc}") from None
    errors = sorted(_odcs_validator().iter_errors(data), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        raise ContractError(f"{path}: at `{_yaml_path(first)}`: {first.message} "
                            f"({len(errors)} schema error(s); see the ODCS v3.1 specification).")
    _odcs_model(data)       # the second validation, by the ODCS models, before the text is remembered
    try:
        mark.parent.mkdir(parents=True, exist_ok=True)
        tmp = mark.with_name(f".{mark.name}.{os.getpid()}")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(mark)
    except (OSError, TypeError, ValueError):
        pass                # no cache (read-only, or a value JSON cannot hold): parsed and validated each time
    return data


def load_contract(path: Path) -> Contract:
    """Validate one ODCS file and return its typed view."""
    path = Path(path)
    data = _validated(path, path.read_text(encoding="utf-8"))
    tables = data.get("schema") or []
    if len(tables) != 1:
        raise ContractError(f"{path}: at `schema`: a Shuku contract describes exactly one table.")
    obj = tables[0]
    top = _custom(data.get("customProperties"))
    layer = str(top.get("layer") or path.parent.name)
    if layer not in LAYERS:
        raise ContractError(f"{path}: at `customProperties.layer`: {layer!r} is not one of {', '.join(LAYERS)}.")
    if top.get("partitioning") not in (None, *PARTITIONINGS):
        raise ContractError(f"{path}: at `customProperties.partitioning`: {top['partitioning']!r} is not one of "
                            f"{', '.join(PARTITIONINGS)} (or absent, for a table kept as one snapshot).")
    if obj.get("physicalName") != f"{layer}.{obj['name']}":
        raise ContractError(f"{path}: at `schema[0].physicalName`: expected {layer}.{obj['name']!r}, "
                            f"found {obj.get('physicalName')!r}.")
    columns = []
    for i, prop in enumerate(obj.get("properties") or ()):
        where = f"schema[0].properties[{i}]"
        if prop.get("physicalType") not in POLARS_TYPES:
            raise ContractError(f"{path}: at `{where}.physicalType`: {prop.get('physicalType')!r} is not one of "
                                f"{', '.join(POLARS_TYPES)}.")
        if prop.get("classification") not in LEVELS:
            raise ContractError(f"{path}: at `{where}.classification`: {prop.get('classification')!r} is not one of "
                                f"{', '.join(LEVELS)}.")
        custom = _custom(prop.get("customProperties"))
        allowed = None
        for rule in prop.get("quality") or ():
            arguments = rule.get("arguments")
            if rule.get("metric") == "invalidValues" and arguments and "validValues" in arguments:
                allowed = tuple(str(v) for v in arguments["validValues"])
        columns.append(Column(
            name=prop["name"], logical_type=prop.get("logicalType") or "", physical_type=prop["physicalType"],
            description=prop.get("description") or "", classification=prop["classification"],
            required=bool(prop.get("required")), unique=bool(prop.get("unique")),
            primary_key=bool(prop.get("primaryKey")), partitioned=bool(prop.get("partitioned")),
            options=dict(prop.get("logicalTypeOptions") or {}), pii=str(custom.get("pii", "none")),
            masking=custom.get("masking"), allowed_values=allowed, custom=custom))
    sla = _custom(data.get("slaProperties"))
    team = data.get("team")
    owner = (team.get("name") or "") if isinstance(team, dict) else ""
    return Contract(
        layer=layer, table=obj["name"], description=obj.get("description") or "", owner=owner,
        columns=tuple(columns), partitioning=top.get("partitioning"),
        freshness_days=sla.get("freshness"), retention_years=sla.get("retention"),
        path=path, data=data, custom=top)


@lru_cache(maxsize=256)
def _cached_contract(path: Path, mtime_ns: int) -> Contract:
    return load_contract(path)


def load_contracts(root: Path = CONTRACTS_DIR) -> dict[str, Contract]:
    """Every contract under ``root``, keyed by ``layer.table`` (each file read once per change)."""
    contracts = {}
    for path in sorted(Path(root).glob("*/*.odcs.yaml")):
        contract = _cached_contract(path, path.stat().st_mtime_ns)
        contracts[contract.qualified_name] = contract
    return contracts


def contract_for(qualified_name: str) -> Contract:
    """The contract of one table, read from its own file only."""
    layer, _, table = qualified_name.partition(".")
    path = CONTRACTS_DIR / layer / f"{table}.odcs.yaml"
    if not table or not path.exists():
        raise ContractError(f"no contract for {qualified_name}: add schemas/{layer}/{table or '<table>'}.odcs.yaml")
    return _cached_contract(path, path.stat().st_mtime_ns)


def _same_kind(actual: pl.DataType, wanted: pl.DataType) -> bool:
    """A cast that cannot change meaning: from an all-null column, or within integers, floats or timestamps."""
    if actual == pl.Null:
        return True
    if actual.is_integer() and wanted.is_integer():
        return True
    if actual.is_float() and wanted.is_float():
        return True
    return isinstance(actual, pl.Datetime) and isinstance(wanted, pl.Datetime)


def conform(frame: pl.DataFrame, contract: Contract) -> pl.DataFrame:
    """Return ``frame`` with the contract's columns, order and types, or raise a readable diff.

    Missing and extra columns fail; a column whose type differs is cast only when the cast
    is lossless for every value (an integer width, a null-only column), else it fails.
    """
    expected = contract.polars_schema()
    missing = [c for c in expected if c not in frame.columns]
    extra = [c for c in frame.columns if c not in expected]
    problems = [f"  - missing column {c} ({contract.column(c).physical_type})" for c in missing]
    problems += [f"  + unexpected column {c} ({frame.schema[c]})" for c in extra]
    casts = []
    for name, dtype in expected.items():
        if name in missing:
            continue
        actual = frame.schema[name]
        if actual == dtype:
            casts.append(pl.col(name))
            continue
        converted = None
        if _same_kind(actual, dtype):
            try:
                converted = frame.get_column(name).cast(dtype, strict=True)
            except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError):
                converted = None
        if converted is None or converted.null_count() != frame.get_column(name).null_count():
            problems.append(f"  ~ column {name}: contract says {contract.column(name).physical_type}, data is {actual}")
        else:
            casts.append(pl.col(name).cast(dtype))
    if problems:
        raise ContractViolation(
            f"{contract.qualified_name} does not match its contract {contract.path.name}:\n"
            + "\n".join(problems)
            + "\nFix the code that builds the table, or change the contract (a breaking change).")
    return frame.select(casts)
