"""`shuku audit verify|anchor|rekey`: the keyed hash-chained logs (access, erasure, consent, ingest) checked."""

from __future__ import annotations

import json

import click

from pipelines.cli_shared import Failed, prepared_settings


@click.group()
def audit() -> None:
    """The tamper-evident audit trail: meta.access_log, meta.erasure_ledger, meta.consent, meta.ingest_log."""


def _reports(anchors: tuple[str, ...]):
    from warehouse.audit import AuditError, UnkeyedTrail
    from warehouse.audit_anchor import verify_trail

    try:
        return verify_trail(prepared_settings(), list(anchors))
    except UnkeyedTrail as exc:
        raise Failed(str(exc)) from None
    except AuditError as exc:
        raise click.UsageError(str(exc)) from None


@audit.command("verify")
@click.option("--anchor", "anchors", multiple=True, metavar="LOG:ENTRY:HASH",
              help="A head published earlier (`shuku audit anchor`); the log must still hold it. Repeatable. "
                   "The heads each run published in the alerts log are checked too.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def verify_command(anchors: tuple[str, ...], fmt: str) -> None:
    """Recompute every chain; name the first entry changed, removed or inserted, per log. Exits 1 if any."""

    reports = _reports(anchors)
    if fmt == "json":
        click.echo(json.dumps([{"log": r.log, "ok": r.ok, "entries": r.entries, "head": r.anchor,
                                "erased": r.erased, "problem": r.problem} for r in reports], indent=2))
    else:
        for r in reports:
            erased = f", {r.erased} erased by a ledgered erasure" if r.erased else ""
            state = "ok" if r.ok else "TAMPERED"
            click.echo(f"{state:8} {r.log}: {r.entries:,} entries{erased}, head entry {r.head_seq}")
            if r.problem:
                click.echo(f"         {r.problem}")
    broken = [r.log for r in reports if not r.ok]
    if broken:
        raise Failed(f"the chain of {', '.join(broken)} does not verify; the line above names the first entry.")


@audit.command("anchor")
def anchor_command() -> None:
    """Print each log's head as LOG:ENTRY:HASH, to publish or countersign elsewhere.

    Refuses (exit 1) while a chain does not verify: a head of a tampered log proves nothing.
    """

    reports = _reports(())
    for r in reports:
        click.echo(r.anchor)
    broken = [r.log for r in reports if not r.ok]
    if broken:
        raise Failed(f"{', '.join(broken)} does not verify (`shuku audit verify`); do not publish its head.")


@audit.command("rekey")
@click.option("--anchor", "anchors", multiple=True, metavar="LOG:ENTRY:HASH",
              help="A head published before keying; the old trail must still hold it. Repeatable.")
def rekey_command(anchors: tuple[str, ...]) -> None:
    """Key a trail chained before keys: check it with its old hashes, then hash every entry again under
    a new audit key (secrets/audit.key). Refuses (exit 1) a trail that does not verify or is keyed already."""
    from warehouse.audit import AuditError
    from warehouse.audit_rekey import rekey

    try:
        counts = rekey(prepared_settings(), list(anchors))
    except AuditError as exc:
        raise Failed(str(exc)) from None
    for log, count in counts.items():
        click.echo(f"keyed    {log}: {count:,} entries")
    click.echo("Publish the new heads (`shuku audit anchor`): anchors published before name the old hashes.")
