"""Harvesting COUNTER reports over the COUNTER_SUSHI API into landing, as the Code of Practice asks.

Per platform: `/status` first (a service that says it is not active is asked again next time), then
each configured report for the months asked, in pieces of `months_per_request`. Each answer that
holds usage — a report, or a 3030 "no usage" — is stored byte for byte in landing/counter, beside a
record of its request (without the API key) and its SHA-256, where the COUNTER feed loads it like
any delivered file. Queued and busy answers are asked again after a wait (sushi.py) and, if still
not ready, left pending; refused credentials (2000-2099) stop the platform's harvest and say so;
3040 "partial data" is loaded and marked partial. Every platform × report × month asked for gets a
cell in the coverage matrix (coverage.py).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from dataclasses import dataclass, field
from typing import Callable

import requests

from assets.eresources import coverage
from assets.eresources.coverage import FAILED, HARVESTED, NO_USAGE, PARTIAL, PENDING
from assets.eresources.sushi import RETRY_CODES, RETRY_HTTP, Answer, SushiClient, describe
from warehouse.counter_platforms import CounterConfigError, SushiPlatform
from warehouse.lake.files import sha256_of, write_bytes_atomic, write_text_atomic
from warehouse.lake.paths import request_record
from warehouse.library import Library
from warehouse.settings import Settings
from warehouse.textio import LandingFileError

FOLDER = "counter"
FIRST_MONTH = dt.date(2019, 1, 1)  # COUNTER Release 5 reports begin in 2019
NO_USAGE_CODE, NOT_READY, NO_LONGER_AVAILABLE, PARTIAL_DATA = 3030, 3031, 3032, 3040


def credentials_refused(codes: set[int]) -> bool:
    """2000-2099: the requestor, customer or API key was refused; asking again will not help."""
    return any(2000 <= c < 2100 for c in codes)


@dataclass
class Harvest:
    """What one harvest did."""

    cells: list[dict] = field(default_factory=list)      # rows of meta.counter_harvest
    landed: list[str] = field(default_factory=list)      # landing files written (relative to landing/)
    notes: list[str] = field(default_factory=list)       # one line per platform that did not go well

    @property
    def landed_months(self) -> list[str]:
        return sorted({c["usage_month"].strftime("%Y-%m") for c in self.cells if c["source_file"]})

    def count(self, status: str) -> int:
        return sum(1 for c in self.cells if c["status"] == status)


def months_between(first: dt.date, last: dt.date) -> list[dt.date]:
    months, month = [], first.replace(day=1)
    while month <= last:
        months.append(month)
        month = (month + dt.timedelta(days=32)).replace(day=1)
    return months


def check_range(first: dt.date, last: dt.date, today: dt.date) -> None:
    """Refuse a range COUNTER cannot answer: before Release 5, the current month or later, or backwards."""
    if last < first:
        raise ValueError(f"--to {last:%Y-%m} is before --from {first:%Y-%m}.")
    if first < FIRST_MONTH:
        raise ValueError(f"--from {first:%Y-%m}: COUNTER Release 5 reports begin in 2019-01; ask from 2019-01 on.")
    if last >= today.replace(day=1):
        raise ValueError(f"--to {last:%Y-%m}: the month is not over yet (today is {today}); "
                         "COUNTER reports a month once it has ended.")


def _pieces(months: list[dt.date], size: int) -> list[list[dt.date]]:
    return [months[i:i + size] for i in range(0, len(months), size)]


def _landing_name(platform: SushiPlatform, report_id: str, piece: list[dt.date]) -> str:
    first, last = piece[0].strftime("%Y-%m"), piece[-1].strftime("%Y-%m")
    span = first if first == last else f"{first}_{last}"
    return f"{FOLDER}/{first}/{platform.file_stem}_{report_id}_{span}.json"


class _Platform:
    """One platform's harvest: its client, and the cells it gives."""

    def __init__(self, settings: Settings, library: Library, platform: SushiPlatform, client: SushiClient,
                 out: Harvest):
        self.settings, self.library, self.platform, self.client, self.out = settings, library, platform, client, out

    def cell(self, report_id: str, month: dt.date, status: str, answer: Answer | None, *, code=None, reason=None,
             source_file=None, sha=None, rows=None) -> None:
        self.out.cells.append({
            "platform": self.platform.name, "report_id": report_id, "usage_month": month, "status": status,
            "code": code, "reason": self.client.redact(reason)[:1000] if reason else None, "source_file": source_file,
            "file_sha256": sha, "usage_rows": rows, "attempts": answer.attempts if answer else 1,
            "harvested_at": (answer.requested_at if answer else dt.datetime.now(dt.UTC)).replace(tzinfo=None)})

    def all_cells(self, reports, months, status: str, answer: Answer | None, code, reason: str) -> None:
        for report_id in reports:
            for month in months:
                self.cell(report_id, month, status, answer, code=code, reason=reason)

    def status_verdict(self, answer: Answer) -> tuple[str, int | None, str] | None:
        """Why the platform is not asked for reports now (None: ask)."""
        codes = answer.codes
        if credentials_refused(codes):
            return FAILED, min(codes), f"/status refused the credentials: {describe(answer.exceptions)}"
        if answer.http_status is None or (not answer.doc and answer.http_status in RETRY_HTTP) or codes & RETRY_CODES:
            why = answer.error or describe(answer.exceptions) or f"HTTP {answer.http_status}"
            return PENDING, min(codes) if codes else None, (
                f"/status did not answer after {answer.attempts} tries ({why}); harvested again next time")
        entries = answer.doc if isinstance(answer.doc, list) else [answer.doc]
        states = [e for e in entries if isinstance(e, dict) and "Service_Active" in e]
        if states and not any(e["Service_Active"] is True for e in states):
            note = "; ".join(str(e.get("Note") or "") for e in states if e.get("Note")) or "no note"
            return PENDING, None, f"/status says the service is not active ({note[:200]}); harvested again next time"
        return None

    def report(self, report_id: str, piece: list[dt.date]) -> bool:
        """Ask for one report over ``piece``; False when the platform refused the credentials."""
        answer = self.client.report(report_id, piece[0].strftime("%Y-%m"), piece[-1].strftime("%Y-%m"))
        codes, tries = answer.codes, f"after {answer.attempts} tries"
        said = describe(answer.exceptions)
        if answer.is_report:
            self.land_report(report_id, piece, answer)
            return True
        if credentials_refused(codes):
            self.all_cells([report_id], piece, FAILED, answer, min(codes),
                           f"credentials refused: {said}; check customer_id and requestor_id in the library config "
                           "and the API key, then harvest again")
            return False
        if codes & RETRY_CODES or codes == {NOT_READY}:
            self.all_cells([report_id], piece, PENDING, answer, min(codes & (RETRY_CODES | {NOT_READY})),
                           f"{said} ({tries}); harvested again next time")
        elif codes and NO_USAGE_CODE in codes:
            self.land(report_id, piece, answer, NO_USAGE, NO_USAGE_CODE, said, {})
        elif codes:
            self.all_cells([report_id], piece, FAILED, answer, min(codes), said)
        elif answer.http_status is None or answer.http_status in RETRY_HTTP:
            self.all_cells([report_id], piece, PENDING, answer, None,
                           f"{answer.error or f'HTTP {answer.http_status}'} ({tries}); harvested again next time")
        else:
            self.all_cells([report_id], piece, FAILED, answer, None,
                           f"HTTP {answer.http_status}: not a COUNTER_SUSHI answer ({answer.error or 'no report'})")
        return True

    def land_report(self, report_id: str, piece: list[dt.date], answer: Answer) -> None:
        """A report: checked by the COUNTER parser, then landed; its months marked by what it holds."""
        from assets.eresources.counter import parse

        staged = self.settings.home / "tmp" / "harvest" / f"{os.getpid()}-{self.platform.file_stem}_{report_id}.json"
        staged.parent.mkdir(parents=True, exist_ok=True)
        staged.write_bytes(answer.body)
        try:
            result = parse(staged, self.library)
        except LandingFileError as exc:
            reason = str(exc).replace(str(staged), f"the {report_id} answer")
            self.all_cells([report_id], piece, FAILED, answer, None, f"not loadable: {reason}")
            return
        finally:
            staged.unlink(missing_ok=True)
        rows = result.rows.group_by("usage_month").len().rows() if result.rows.height else []
        self.land(report_id, piece, answer, None, None, describe(answer.exceptions), dict(rows))

    def land(self, report_id: str, piece: list[dt.date], answer: Answer, status: str | None, code: int | None,
             said: str, rows: dict[dt.date, int]) -> None:
        """Store the answer and its request in landing, and mark each month of ``piece``."""
        name = _landing_name(self.platform, report_id, piece)
        path = self.settings.landing / name
        write_bytes_atomic(path, answer.body)
        sha, size = sha256_of(path)
        record = {**answer.record(), "platform": self.platform.name, "report_id": report_id,
                  "begin_date": piece[0].strftime("%Y-%m"), "end_date": piece[-1].strftime("%Y-%m"),
                  "file": name, "sha256": sha}
        write_text_atomic(request_record(path), json.dumps(record, indent=2) + "\n")
        self.out.landed.append(name)
        codes = answer.codes
        for month in piece:
            count = rows.get(month, 0)
            if status is not None:
                verdict = (status, code, said)
            elif count and PARTIAL_DATA in codes:
                verdict = (PARTIAL, PARTIAL_DATA, said)
            elif count:
                verdict = (HARVESTED, None, said or None)
            elif NOT_READY in codes:
                verdict = (PENDING, NOT_READY, f"{said}; harvested again next time")
            elif NO_LONGER_AVAILABLE in codes:
                verdict = (FAILED, NO_LONGER_AVAILABLE, said)
            else:
                verdict = (NO_USAGE, NO_USAGE_CODE if NO_USAGE_CODE in codes else None,
                           said or "the report holds no usage for the month")
            self.cell(report_id, month, verdict[0], answer, code=verdict[1], reason=verdict[2], source_file=name,
                      sha=sha, rows=count)


def harvest(settings: Settings, library: Library, months: list[dt.date], platforms: list[SushiPlatform] | None = None,
            *, sleep: Callable[[float], None] = time.sleep, session: requests.Session | None = None,
            log: Callable[[str], None] | None = None) -> Harvest:
    """Harvest ``platforms`` (default: every configured one) for ``months``, land the answers, record coverage."""
    counter = library.counter
    out = Harvest()
    for platform in platforms if platforms is not None else counter.platforms:
        try:
            api_key = platform.api_key(settings.secrets_dir)
        except CounterConfigError as exc:
            client = SushiClient(platform, None, attempts=1, wait_seconds=0, sleep=sleep, session=session)
            _Platform(settings, library, platform, client, out).all_cells(platform.reports, months, FAILED, None,
                                                                          None, str(exc))
            out.notes.append(str(exc))
            continue
        client = SushiClient(platform, api_key, attempts=counter.retry_attempts,
                             wait_seconds=counter.retry_wait_seconds, sleep=sleep, session=session)
        one = _Platform(settings, library, platform, client, out)
        verdict = one.status_verdict(client.status())
        if verdict is not None:
            status, code, reason = verdict
            one.all_cells(platform.reports, months, status, None, code, reason)
            out.notes.append(f"{platform.name}: {client.redact(reason)}")
            continue
        refused = None
        for report_id in platform.reports:
            if log:
                log(f"{platform.name} {report_id} {months[0]:%Y-%m}..{months[-1]:%Y-%m}")
            for piece in _pieces(months, platform.months_per_request):
                if refused is not None:
                    one.all_cells([report_id], piece, FAILED, None, refused["code"], f"not asked: {refused['reason']}")
                elif not one.report(report_id, piece):
                    refused = out.cells[-1]
                    out.notes.append(f"{platform.name}: {refused['reason']}")
    coverage.record(settings, out.cells)
    return out
