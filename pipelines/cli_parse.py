"""`shuku parse SOURCE FILE`: one landing file parsed without storing it, to check it before it
goes into landing. Whatever the file, the answer ends in one line; a parser's traceback goes to
the home folder's logs/errors.log."""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

import click

from pipelines.cli_shared import checked_library, err, log_traceback, no_traceback, one_line, prepared_settings


@click.command()
@click.argument("source")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@no_traceback("parse", "file")
def parse(source: str, file: Path) -> None:
    """Parse one landing file without storing it: rows as JSON lines on stdout, rejects on stderr.

    SOURCE is a landing source (circulation, holds, patrons, searches, marc, counter, ezproxy,
    gates: schemas/vocabulary.py lists them). Card numbers are pseudonymised as they would be in the
    warehouse. Exit code 0 when every row parsed, 1 when some rows would be quarantined or the file
    is empty (no bytes, or a header and no rows), 2 when the file cannot be read. A failure is one
    line on stderr; a parser's traceback goes to the home folder's logs/errors.log.
    """
    import polars as pl

    from assets.feeds import parser_batches, source_parser
    from schemas.vocabulary import SOURCES

    # Checked here, not by click: the parsers behind them are too heavy to import for every `shuku --help`.
    if source not in SOURCES:
        raise click.BadParameter(f"{source!r} is not a landing source; use one of {', '.join(SOURCES)}.",
                                 param_hint="SOURCE")
    from warehouse.pseudonym import Pseudonymiser
    from warehouse.textio import LandingFileError

    settings = prepared_settings()
    library = checked_library(settings)
    pseudonymiser = Pseudonymiser.load(settings.secrets_dir)
    batches, parsed = [], 0
    try:
        # A batch of lines at a time (assets/feeds.parser_batches): rows go out as they are read.
        for batch in parser_batches(source_parser(source), file, library):
            for record in pseudonymiser.pseudonymise(batch.rows).iter_rows(named=True):
                sys.stdout.write(json.dumps(record, default=str, ensure_ascii=False) + "\n")
            parsed += batch.rows.height
            batches.append(batch if not batches else replace(batch, rows=batch.rows.clear()))
            if len(batches) > 1:
                batches[0] = replace(batches[0], rows=batches[0].rows.clear())
    except LandingFileError as exc:
        _say(one_line(exc))
        sys.exit(2)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # noqa: BLE001 - a parser's bug (polars' PanicException included): one line, traceback logged
        _say(_parser_failed(settings, source, file, exc))
        sys.exit(2)
    # One batch is the parser's whole result; of several, the rejects of all and the last one's facts.
    result = batches[0] if len(batches) == 1 else replace(
        batches[-1], rows=batches[-1].rows.clear(), rejects=pl.concat([b.rejects for b in batches]))
    reasons = result.rejects.group_by("reason").len().sort("reason").rows() if result.rejects.height else []
    summary = {"file": str(file), "format": result.format, "encoding": result.encoding,
               "rows_read": parsed + result.rejects.height, "rows_parsed": parsed,
               "rejected": result.rejects.height, "rejected_by_reason": dict(reasons)}
    if result.empty:
        summary["empty"] = result.empty
    if source == "ezproxy":
        from assets.eresources.ezproxy import summarise
        summary["report"] = summarise(result)
    if source == "marc" and "items" in result.metadata:
        summary["items"] = result.metadata["items"].height
    if source == "counter":
        from assets.eresources.counter_header import describe
        summary["header"] = {k: v for k, v in result.metadata.items() if k not in ("header", "months")}
    # One JSON line first, so scripts can read the summary; then the first rejects for people.
    sys.stderr.write(json.dumps(summary, default=str, ensure_ascii=False) + "\n")
    for line, reason, detail in result.rejects.select("source_line", "reason", "detail").head(20).iter_rows():
        _say(f"  line {line}: {reason}: {one_line(detail, 300)}")
    if result.empty:
        _say(f"{file}: empty ({result.empty}): a daily file without rows is usually a failed export; ask for it "
             "again. `shuku run` would log it as empty and keep the stored partition.")
        sys.exit(1)
    if source == "counter":
        for line in describe(result.metadata):
            err.print(line, markup=False, highlight=False)
        if not parsed and not result.metadata.get("exceptions"):
            err.print(f"{file}: no usage row and no COUNTER exception: a report without usage must say so "
                      "(3030); `shuku run` would load nothing from it.", markup=False, highlight=False)
            sys.exit(1)
    if not (parsed or result.recognised):
        from assets.admission import expected_of_source
        err.print(f"{file}: the file's structure was not recognised: no row was read from it and none was "
                  f"rejected (expected a {expected_of_source(source)}). `shuku run` would log it as unrecognised "
                  "and not load it.", markup=False, highlight=False)
        sys.exit(1)
    if result.rejects.height:
        sys.exit(1)


def _say(line: str) -> None:
    """One line on stderr, as it is (no wrapping, no markup)."""
    err.print(line, markup=False, highlight=False, soft_wrap=True)


def _parser_failed(settings, source: str, file: Path, exc: BaseException) -> str:
    from assets.admission import expected_of_source
    where = log_traceback(settings, f"parse {source} {file}", exc)
    return one_line(f"{file}: the {source} parser failed ({type(exc).__name__}) and read nothing: check that it is "
                    f"a {expected_of_source(source)}, and report the failure with the file (the traceback is in "
                    f"{where or 'no log: the home folder is not writable'}).")
