"""A SQL model: one `.sql` file per core and mart table, in the DuckDB dialect.

Dependencies come from parsing each file with sqlglot (every `layer.table` it reads), never
from regular expressions. Its result is checked against the contract before it is written.
"""

from dataclasses import dataclass
from pathlib import Path

import sqlglot
from sqlglot import exp

from schemas.model import ContractViolation, contract_for
from schemas.vocabulary import MODEL_LAYERS

MODELS_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class SqlModel:
    layer: str
    name: str
    path: Path
    sql: str

    @property
    def qualified_name(self) -> str:
        return f"{self.layer}.{self.name}"

    def upstream(self) -> list[str]:
        """Every `layer.table` the model reads (CTE names excluded)."""
        tree = sqlglot.parse_one(self.sql, dialect="duckdb")
        ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
        tables = set()
        for table in tree.find_all(exp.Table):
            if table.db and table.name not in ctes:
                tables.add(f"{table.db}.{table.name}")
        return sorted(tables)

    def portability_problems(self) -> list[str]:
        """What in the model would not mean the same on Spark or Trino once sqlglot transpiles it:
        reading files or tables other than `layer.table` (the lake is read in one place, the
        views), GROUP BY ALL (Trino reads it as a set quantifier) and QUALIFY (rewritten, with
        changed null ordering)."""
        tree = sqlglot.parse_one(self.sql, dialect="duckdb")
        ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
        problems = []
        for table in tree.find_all(exp.Table):
            reads_file = isinstance(table.this, exp.Identifier) and table.this.quoted and "." in table.name
            if isinstance(table.this, exp.Func) or reads_file:
                problems.append(f"reads {table.this.sql('duckdb')}: read `layer.table` views, not files")
            elif not table.db and table.name not in ctes:
                problems.append(f"reads {table.name} without its layer: write `layer.{table.name}`")
        if any(group.args.get("all") for group in tree.find_all(exp.Group)):
            problems.append("GROUP BY ALL: name the grouped columns")
        if any(tree.find_all(exp.Qualify)):
            problems.append("QUALIFY: filter the window's result in the next CTE")
        return problems

    def in_dialect(self, dialect: str) -> str:
        """The model transpiled by sqlglot to another engine's SQL (e.g. "spark", "trino").
        A model that would not carry over (see `portability_problems`) raises ValueError naming its file."""
        problems = self.portability_problems()
        if problems:
            raise ValueError(f"{self.path}: {self.qualified_name} is not portable to {dialect}:\n"
                             + "\n".join(f"  - {p}" for p in problems))
        return sqlglot.transpile(self.sql, read="duckdb", write=dialect, pretty=True,
                                 unsupported_level=sqlglot.ErrorLevel.RAISE)[0]


def discover_models(root: Path = MODELS_DIR) -> list[SqlModel]:
    models = []
    for layer in MODEL_LAYERS:
        for path in sorted((root / layer).glob("*.sql")):
            models.append(SqlModel(layer, path.stem, path, path.read_text(encoding="utf-8")))
    return models


def check_result_columns(con, model: SqlModel) -> None:
    """Compare the model's output columns and DuckDB types with its contract, before writing."""
    contract = contract_for(model.qualified_name)
    described = con.execute(f"DESCRIBE ({model.sql})").fetchall()
    actual = {row[0]: row[1] for row in described}
    expected = {c.name: c.physical_type for c in contract.columns}
    problems = [f"  - missing column {n} ({t})" for n, t in expected.items() if n not in actual]
    problems += [f"  + unexpected column {n} ({t})" for n, t in actual.items() if n not in expected]
    problems += [f"  ~ column {n}: contract says {t}, model gives {actual[n]}"
                 for n, t in expected.items() if n in actual and actual[n] != t]
    order = [n for n in actual if n in expected]
    if not problems and order != list(expected):
        problems.append(f"  column order {order} differs from the contract's {list(expected)}")
    if problems:
        raise ContractViolation(
            f"{model.qualified_name} ({model.path.name}) does not match its contract {contract.path.name}:\n"
            + "\n".join(problems) + "\nFix the model's final select, or change the contract (a breaking change).")
