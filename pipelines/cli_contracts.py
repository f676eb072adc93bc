"""`shuku contracts lint|docs|diff|export` and `shuku publish`: governance contracts and per-role databases."""

from __future__ import annotations

from pathlib import Path

import click

from pipelines.cli_shared import Failed, err, out, prepared_settings


def pipeline_tables() -> set[str]:
    """Every ``layer.table`` the pipeline writes (see assets/catalog.py)."""
    from assets.catalog import pipeline_tables as written

    return written()


@click.group()
def contracts() -> None:
    """Governance contracts: lint them, document them, compare two versions."""


@contracts.command()
@click.option("--root", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="Folder of <layer>/<table>.odcs.yaml files (default: the project's schemas/).")
def lint(root: Path | None) -> None:
    """Check naming, types, descriptions, classification and masking; every table has a contract and back."""
    from schemas.lint import lint as run_lint
    from schemas.model import ContractError, load_contracts

    try:
        loaded = load_contracts(root) if root else load_contracts()
    except ContractError as exc:
        raise Failed(str(exc)) from None
    findings = run_lint(loaded, tables=pipeline_tables() if root is None else None)
    for f in findings:
        click.echo(f"{f.file}: at `{f.path}`: [{f.rule}] {f.message}")
    if findings:
        raise Failed(f"{len(findings)} finding(s) in {len({f.file for f in findings})} contract file(s).")
    err.print(f"{len(loaded)} contracts, no findings.")


@contracts.command()
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to write data-dictionary.md and data-dictionary.html into.")
def docs(out_dir: Path) -> None:
    """Write the data dictionary (Markdown and self-contained HTML) for every table."""
    from warehouse.data_dictionary import write_docs

    paths = write_docs(out_dir)
    for path in paths:
        out.print(f"wrote {path}")


@contracts.command()
@click.argument("old", type=click.Path(exists=True, path_type=Path))
@click.argument("new", type=click.Path(exists=True, path_type=Path))
def diff(old: Path, new: Path) -> None:
    """Compare two contract files or folders; exit 1 when a change is breaking."""
    from schemas.diff import diff_paths

    try:
        changes = diff_paths(old, new)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    for change in changes:
        mark = "BREAKING" if change.breaking else "ok"
        click.echo(f"{mark:8} {change.table}{'.' + change.column if change.column else ''}: {change.message}")
    breaking = [c for c in changes if c.breaking]
    if breaking:
        raise Failed(f"{len(breaking)} breaking change(s) of {len(changes)}.")
    err.print(f"{len(changes)} change(s), none breaking.")


@contracts.command(name="export")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder to write <layer>/<table>.odcs.yaml into.")
@click.option("--home", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="Home folder whose lake the files point at (default: SHUKU_HOME).")
def export(out_dir: Path, home: Path | None) -> None:
    """Write each staging, core and mart contract with a server on this home's Parquet files,
    for `datacontract test` (datacontract-cli) to check the lake against the contracts."""
    from warehouse.lake_contracts import export_contracts
    from warehouse.settings import Settings

    settings = Settings(home.resolve()) if home else prepared_settings()
    written = export_contracts(settings, out_dir)
    for item in written:
        out.print(f"wrote {item.path}")
    empty = [item.table for item in written if not item.has_data]
    if empty:
        err.print(f"no Parquet files yet for {', '.join(empty)}: run `shuku run` before testing those.")
    err.print(f"{len(written)} contracts; test one with: datacontract test {written[0].path if written else 'FILE'}")


@click.command()
def publish() -> None:
    """Write access/<role>.duckdb for every role: copies of only the columns each role may see."""
    from warehouse.access import publish as publish_all

    settings = prepared_settings()
    for result in publish_all(settings):
        hidden = sum(result.suppressed.values())
        note = f"  ({hidden:,} small cells suppressed)" if hidden else ""
        out.print(f"{result.role:16} {len(result.tables):3} tables  {result.bytes / 1e6:7.1f} MB  {result.path}{note}")
    from warehouse.data_dictionary import dictionary_path
    out.print(f"data dictionary  {dictionary_path(settings)}")
