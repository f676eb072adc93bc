"""`shuku consent`, `shuku erase` and `shuku report transparency|reader`: the privacy officer's commands.

A card number typed here is turned into its pseudonym at once; it is never written to a file,
a log or an error message.
"""

from __future__ import annotations

from pathlib import Path

import click

from pipelines.cli_report import report   # the reports group, shared with `shuku report library`
from pipelines.cli_shared import Failed, checked_library, existing_settings, prepared_settings
from warehouse.grants import current_account


def _pid(settings, card: str) -> tuple[str, int]:
    from warehouse.privacy import pseudonymiser
    pseudo = pseudonymiser(settings)
    return pseudo.pid(card), pseudo.version


def _yes_no(value) -> str:
    return "-" if value is None else ("yes" if value else "no")


@click.group()
def consent() -> None:
    """Record and show readers' consent to profiling and recommendations (meta.consent)."""


@consent.command("set")
@click.argument("card")
@click.option("--profiling/--no-profiling", default=None, help="Consent to reader profiles.")
@click.option("--recommendations/--no-recommendations", default=None, help="Consent to recommendations.")
def consent_set(card: str, profiling: bool | None, recommendations: bool | None) -> None:
    """Record a reader's choice; core.dim_patron and the profiles follow at the next models run."""
    from warehouse.privacy.consent import set_consent

    if profiling is None and recommendations is None:
        raise click.UsageError("give --profiling/--no-profiling, --recommendations/--no-recommendations, or both.")
    settings = prepared_settings()
    pid, version = _pid(settings, card)
    row = set_consent(settings, pid, version, profiling=profiling, recommendations=recommendations,
                      changed_by=current_account().name)
    click.echo(f"reader {pid[:12]}…: profiling {_yes_no(row['profiling'])}, recommendations "
               f"{_yes_no(row['recommendations'])} (recorded {row['changed_at']:%Y-%m-%d %H:%M} UTC; "
               "applies from the next `shuku run`).")


@consent.command("show")
@click.argument("card")
def consent_show(card: str) -> None:
    """A reader's consent in force and its history."""
    from warehouse.privacy.consent import history

    settings = prepared_settings()
    pid, _ = _pid(settings, card)
    rows = history(settings, pid).to_dicts()
    if not rows:
        click.echo(f"reader {pid[:12]}…: no choice recorded; the patron export's answer applies.")
        return
    last = rows[-1]
    click.echo(f"reader {pid[:12]}…: profiling {_yes_no(last['profiling'])}, "
               f"recommendations {_yes_no(last['recommendations'])}")
    for row in rows:
        click.echo(f"  {row['changed_at']:%Y-%m-%d %H:%M}  {row['source']:<18}  profiling {_yes_no(row['profiling'])}, "
                   f"recommendations {_yes_no(row['recommendations'])}  by {row['changed_by']}")


def _hooks(settings):
    from assets.privacy_assets import erasure_hooks
    return erasure_hooks(checked_library(settings))


def _print_ledger(row: dict) -> None:
    click.echo(f"erased: request {row['request_hash'][:12]}…, {row['rows_removed_count']} row(s) removed from "
               f"{len(row['tables_rewritten'])} table(s), {row['landing_files_count']} landing file(s) rewritten, "
               f"{len(row['models_rebuilt'])} model(s) recomputed; recorded in meta.erasure_ledger.")


@click.command()
@click.option("--card", default=None, help="The reader's card number.")
@click.option("--pid", default=None, help="The reader's pseudonymous id (patron_pid) instead of the card.")
@click.option("--resume", is_flag=True, help="Finish erasures that were interrupted.")
@click.option("--verify", "verify_card", default=None, metavar="CARD",
              help="Search the whole home folder for this card number and its pseudonym; exit 1 if found.")
@click.option("--requested-by", default=None, help="Who asked (default: your account).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def erase(card, pid, resume, verify_card, requested_by, yes) -> None:
    """Erase a reader from every layer (right to be forgotten), resume an erasure, or verify one."""
    from warehouse.privacy import erasure

    settings = prepared_settings()
    chosen = sum(bool(x) for x in (card, pid, resume, verify_card))
    if chosen != 1:
        raise click.UsageError("give exactly one of --card, --pid, --resume or --verify.")
    if verify_card:
        found = erasure.verify(settings, card=verify_card)
        if found:
            for where, column in found:
                click.echo(f"  found in {where} ({column})")
            raise Failed(f"the reader is still found in {len(found)} place(s); run `shuku erase --resume` "
                         "if an erasure was interrupted, else erase again.")
        click.echo("no trace of the card number or its pseudonym anywhere under the home folder.")
        return
    try:
        if resume:
            done = erasure.resume(settings, _hooks(settings))
            if not done:
                click.echo("no interrupted erasure to finish.")
            for row in done:
                _print_ledger(row)
            return
        if not yes:
            click.confirm("This removes the reader from landing files, the lake, the per-role databases and the "
                          "consent registry, for good. Go on?", abort=True)
        row = erasure.erase(settings, _hooks(settings), card=card, pid=pid, requested_by=requested_by)
    except erasure.ErasureError as exc:
        raise click.UsageError(str(exc)) from None
    _print_ledger(row)


def _write_or_echo(text: str, out: Path | None) -> None:
    if out is None:
        click.echo(text)
    else:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        click.echo(f"written {out}")


@click.command()
@click.option("--year", type=int, default=None, help="The year to report on (default: the latest year with data).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the Markdown and HTML files (default: reports/ under the home folder).")
def transparency(year: int | None, out_dir: Path | None) -> None:
    """The year's transparency report, as Markdown and HTML."""
    from warehouse.privacy.transparency import latest_year_with_data, transparency_report, write_report

    settings = existing_settings()
    if year is None:
        year = latest_year_with_data(settings)
        click.echo(f"year {year}, the latest year with data (--year to choose another)")
    md, html = write_report(transparency_report(settings, year), out_dir or settings.home / "reports",
                            f"transparency-{year}")
    click.echo(f"written {md}\nwritten {html}")


@click.command()
@click.option("--card", required=True, help="The reader's card number.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the Markdown here instead of printing it.")
def reader(card: str, out: Path | None) -> None:
    """What the warehouse holds about one reader, for the privacy officer to hand over."""
    from warehouse.privacy.transparency import reader_report

    settings = existing_settings()
    pid, _ = _pid(settings, card)
    _write_or_echo(reader_report(settings, pid), out)


report.add_command(transparency)
report.add_command(reader)
