"""A landing file refused whole, in the library's words: which file, how many of its lines were
quarantined and mostly why, and what to do. The same facts make the run's failure text, its
metadata on the run and asset pages, the alert and `shuku status` (never a line's content)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass

from assets.parsing import Reason
from schemas.vocabulary import DAY, MONTH

# How a file's lines read when every quarantined one failed for the same reason.
ALL_FOR = {Reason.MALFORMED_LINE: "are malformed", Reason.TRUNCATED_LINE: "are cut off",
           Reason.BAD_TIMESTAMP: "have a date or time that cannot be read",
           Reason.BAD_NUMBER: "have a number field that is not a number",
           Reason.UNKNOWN_CODE: "hold codes this library does not use",
           Reason.MISSING_REQUIRED: "lack a required field", Reason.BAD_RECORD: "are records that do not decode"}


def rerun_command(feed: str, partitioning: str | None, key: str | None) -> str:
    """The `shuku run` that loads one partition of a feed again."""
    if not key or partitioning not in (DAY, MONTH):
        return f"shuku run --select {feed}"
    first = dt.date.fromisoformat(key if partitioning == DAY else f"{key}-01")
    last = first if partitioning == DAY else (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1) - dt.timedelta(days=1)
    return f"shuku run --from {first} --to {last} --select {feed}"


def action_for(source: str, file: str, rerun: str) -> str:
    """What the librarian does about a file refused whole."""
    return (f"check it with `shuku parse {source} landing/{file}` (in the home folder), ask the sender for a "
            f"correct export, put it in its place and run `{rerun}` again")


@dataclass(frozen=True)
class FileRefusal:
    """A file more of whose lines were quarantined than the library allows (``limit``)."""

    feed: str
    source: str
    expected: str                # what the file should be ("turnstile export")
    file: str                    # under landing/
    partition: str | None
    read: int
    reasons: Counter             # quarantine reason → lines (wrong_partition left out)
    limit: float
    rerun: str

    @property
    def quarantined(self) -> int:
        return sum(self.reasons.values())

    @property
    def commonest(self) -> tuple[str, int]:
        return self.reasons.most_common(1)[0]

    @property
    def action(self) -> str:
        return action_for(self.source, self.file, self.rerun)

    @property
    def message(self) -> str:
        if len(self.reasons) == 1:
            what = ALL_FOR.get(self.commonest[0], f"were quarantined as {self.commonest[0]}")
        else:
            what = ("were quarantined, most as " + self.commonest[0] + " ("
                    + ", ".join(f"{r} {n:,}" for r, n in self.reasons.most_common()) + ")")
        return (f"{self.quarantined:,} of {self.read:,} lines of landing/{self.file} {what}: is this a "
                f"{self.expected}? Refused (more than {self.limit:.0%} of its lines unreadable, "
                "max_quarantined_share in the library config): the stored partition was kept as it was. "
                f"What to do: {self.action}.")

    def metadata(self) -> dict[str, object]:
        """The facts as Dagster metadata: a table on the run's failed step and on the asset's events."""
        import dagster as dg    # not for `shuku status`, which only reads the facts
        reason, lines = self.commonest
        return {"file": f"landing/{self.file}", "partition": self.partition or "snapshot",
                "lines read": self.read, "lines quarantined": self.quarantined,
                "commonest reason": f"{reason} ({lines:,} lines)",
                "reasons": dg.MetadataValue.json(dict(self.reasons.most_common())),
                "what to do": dg.MetadataValue.md(self.action)}


def refusal_metadata(refusals: list[FileRefusal]) -> dict[str, object]:
    """One refused file's facts as they are; several as a list, each with what to do."""
    import dagster as dg
    if len(refusals) == 1:
        return refusals[0].metadata()
    return {"files refused": len(refusals),
            "files": dg.MetadataValue.json([{"file": f"landing/{r.file}", "partition": r.partition, "lines read": r.read,
                                             "lines quarantined": r.quarantined, "commonest reason": r.commonest[0],
                                             "what to do": r.action} for r in refusals[:50]])} if refusals else {}


def rejected_explanations(settings, rows: list[dict]) -> dict[str, str]:
    """landing file → why it was refused and what to do, for the ``rejected`` rows of `shuku status`
    (file, partition, read, run_id), from the quarantine their run wrote."""
    from assets.feeds import FEEDS
    from schemas.model import load_contracts
    from warehouse.lake.views import compute_connection, has_data
    from warehouse.library import load_library

    wanted = {(r["file"], r["run_id"]): r for r in rows}
    contracts = load_contracts()
    names = [n for n in dict.fromkeys(f"quarantine.{f.source}" for f in FEEDS) if has_data(settings, contracts[n])]
    if not wanted or not names:
        return {}
    con = compute_connection(settings, names)
    try:
        union = " UNION ALL ".join(f"SELECT source_file, run_id, staging_table, reason FROM {n}" for n in names)
        pairs = ", ".join("(?, ?)" for _ in wanted)
        found = con.execute(
            f"SELECT q.source_file, q.run_id, q.staging_table, q.reason, count(*) FROM ({union}) AS q "
            f"JOIN (VALUES {pairs}) AS w(file, run) ON q.source_file = w.file AND q.run_id = w.run GROUP BY ALL",
            [v for pair in wanted for v in pair]).fetchall()
    finally:
        con.close()
    library = load_library(settings.library_config)
    by_file: dict[tuple[str, str], tuple[str, Counter]] = {}
    for file, run_id, table, reason, lines in found:
        if reason != Reason.WRONG_PARTITION:
            by_file.setdefault((file, run_id), (table, Counter()))[1][reason] += lines
    explained = {}
    for (file, run_id), (table, reasons) in by_file.items():
        feed = next(f for f in FEEDS if table in f.tables)
        row = wanted[(file, run_id)]
        refusal = FileRefusal(feed.name, feed.source, feed.expected, file, row["partition"] or None, row["read"],
                              reasons, library.max_quarantined_share,
                              rerun_command(feed.name, feed.partitioning, row["partition"] or None))
        if not refusal.read or refusal.quarantined / refusal.read <= refusal.limit:
            continue            # refused for a blocking check on its rows, not for its unreadable lines
        reason, lines = refusal.commonest
        explained[file] = (f"refused: {refusal.quarantined:,} of {refusal.read:,} lines quarantined, most as "
                           f"{reason} ({lines:,}); {refusal.action}")
    return explained
