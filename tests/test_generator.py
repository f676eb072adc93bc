"""The synthetic library generator: deterministic, exact about its defects, consistent
across sources, and in the formats of docs/LANDING.md."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import hashlib
import io
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest
from pymarc import MARCReader

from generator import SCALES, GenerationReport, generate

FIELDS = {"circulation": 9, "holds": 6, "searches": 6, "turnstile": 5, "counter": 4}
EZPROXY = re.compile(r'^(\S+) (\S+) (\S+) \[([^\]]+)\] "([^"]*)" (\d+) (\d+)$')


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, library) -> tuple[Path, GenerationReport]:
    landing = tmp_path_factory.mktemp("tiny") / "landing"
    return landing, generate(landing, library, scale="tiny", seed=42, days=7)


def _read(path: Path) -> str:
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("gb18030")


def _lines(path: Path, header: bool = True) -> tuple[list[str], bool]:
    """Data lines and whether the file ends without a newline (a truncated last line)."""
    text = _read(path).replace("\r\n", "\n")
    cut = not text.endswith("\n")
    lines = text.split("\n")
    if not cut:
        lines = lines[:-1]
    return lines[1:] if header else lines, cut


def _is_time(value: str, fmt: str = "%Y-%m-%d %H:%M:%S") -> bool:
    try:
        dt.datetime.strptime(value, fmt)
        return True
    except ValueError:
        return False


def _marc_items(path: Path) -> tuple[set[str], int, int]:
    items, good, bad = set(), 0, 0
    with open(path, "rb") as fh:
        for rec in MARCReader(fh, to_unicode=True, force_utf8=True):
            if rec is None:
                bad += 1
                continue
            good += 1
            items.update(f["9"] for f in rec.get_fields("952"))
    return items, good, bad


def _file_kind(rel: str) -> str:
    for key, kind in (("circulation/holds_", "holds"), ("circulation/", "circulation"), ("opac/", "searches"), ("turnstile_", "turnstile"),
                      ("counter_", "counter"), ("ezproxy/", "ezproxy")):
        if key in rel:
            return kind
    return ""


def _found_defects(path: Path, kind: str, catalogue_items: set[str]) -> tuple[int, dict[str, int]]:
    """Re-read one text file and count what a strict parser finds."""
    lines, cut = _lines(path, header=kind != "ezproxy")
    found: Counter = Counter()
    if cut:
        found["truncated_line"] += 1
    found["duplicate_row"] = len(lines) - len(set(lines))
    last_in: dict[str, int] = {}
    seen: set[str] = set()
    for n, line in enumerate(lines):
        if (cut and n == len(lines) - 1) or line in seen:
            continue     # the copies are counted above; a parser drops them first
        seen.add(line)
        if kind == "ezproxy":
            m = EZPROXY.match(line)
            if not m:
                found["malformed_line"] += 1
            elif not _is_time(m.group(4), "%d/%b/%Y:%H:%M:%S %z"):
                found["bad_timestamp"] += 1
            continue
        fields = line.split(",")
        if len(fields) != FIELDS[kind]:
            found["malformed_line"] += 1
        elif not _is_time(fields[0]):
            found["bad_timestamp"] += 1
        elif kind == "circulation" and fields[3] not in catalogue_items:
            found["unknown_item"] += 1
        elif kind == "counter":
            total = int(fields[2])
            if total < last_in.get(fields[1], 0):
                found["counter_reset"] += 1
            last_in[fields[1]] = total
    return len(lines), {k: v for k, v in found.items() if v}


def test_same_seed_same_bytes(tmp_path, library, tiny):
    landing, _ = tiny
    again = tmp_path / "again"
    generate(again, library, scale="tiny", seed=42, days=7)
    digest = lambda root: {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
                           for p in sorted(root.rglob("*")) if p.is_file()}
    assert digest(landing) == digest(again)
    other = tmp_path / "other"
    generate(other, library, scale="tiny", seed=7, days=2)
    assert digest(other)["patrons/patrons_2025-09-02.csv"] != digest(landing)["patrons/patrons_2025-09-07.csv"]


def test_report_lists_every_file_with_its_rows_and_defects(tiny):
    landing, report = tiny
    on_disk = sorted(str(p.relative_to(landing)) for p in landing.rglob("*") if p.is_file())
    assert sorted(f.path for f in report.files) == on_disk
    marc = next(f for f in report.files if f.source == "marc")
    items, good, bad = _marc_items(landing / marc.path)
    assert good + bad == marc.rows and marc.defects == {"bad_record": bad} and bad >= 1
    for f in report.files:
        kind = _file_kind(f.path)
        if not kind:
            continue
        rows, found = _found_defects(landing / f.path, kind, items)
        assert rows == f.rows, f.path
        assert found == f.defects, f.path
    by_source = report.defects_by_source()
    for source, kinds in {"circulation": {"malformed_line", "bad_timestamp", "duplicate_row", "truncated_line",
                                          "unknown_item"},
                          "searches": {"malformed_line", "bad_timestamp", "duplicate_row", "truncated_line"},
                          "ezproxy": {"malformed_line", "bad_timestamp", "duplicate_row", "truncated_line"},
                          "gates": {"malformed_line", "bad_timestamp", "duplicate_row", "truncated_line",
                                    "counter_reset"},
                          "marc": {"bad_record"}}.items():
        assert kinds <= set(by_source[source]), source
    # A small, known rate: about 0.5–1.5 % of lines.
    rows = report.rows_by_source()
    for source in ("searches", "ezproxy"):
        share = sum(by_source[source].values()) / rows[source]
        assert 0.003 < share < 0.03, (source, share)
    json.dumps(report.to_dict())


def test_every_card_is_a_patron_and_every_item_is_catalogued(tiny, library):
    landing, report = tiny
    patrons_path = next(landing.glob("patrons/*.csv"))
    raw = patrons_path.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(raw.decode("gb18030"))))
    cards = {r["cardnumber"] for r in rows}
    assert len(cards) == len(rows) == SCALES["tiny"].patrons
    card_re = library.card_regex()
    assert all(card_re.fullmatch(c) and len(c) == 10 for c in cards)
    assert {r["categorycode"] for r in rows} <= {"UG", "PG", "STAFF", "ALUMNI", "PUBLIC", "ORG"}
    assert {r["profiling_consent"] for r in rows} == {"Y", "N", ""}
    items, _, _ = _marc_items(next(landing.glob("catalogue/*.mrc")))
    used: set[str] = set()
    issued_by: dict[str, str] = {}
    for f in report.files:
        kind = _file_kind(f.path)
        if not kind or kind == "counter":
            continue
        lines, cut = _lines(landing / f.path, header=kind != "ezproxy")
        for line in lines[:-1] if cut else lines:
            if kind == "ezproxy":
                m = EZPROXY.match(line)
                if m and m.group(3) != "-":
                    used.add(m.group(3))
                continue
            fields = line.split(",")
            if len(fields) != FIELDS[kind] or not _is_time(fields[0]):
                continue
            card = {"circulation": 6, "holds": 3, "searches": 2, "turnstile": 3}[kind]
            if fields[card]:
                used.add(fields[card])
            if kind == "circulation":
                if fields[3] in items:
                    if fields[2] == "issue":
                        issued_by[fields[3]] = fields[6]
                    elif fields[2] == "return" and fields[3] in issued_by:
                        assert issued_by.pop(fields[3]) == fields[6]   # a return carries its loan's card
                else:
                    assert fields[2] == "localuse"   # unknown_item defects only
    assert used and used <= cards


def test_gates_in_then_out_within_opening_hours(tiny, library):
    landing, _ = tiny
    for path in sorted(landing.glob("gates/turnstile_*.csv.gz")):
        assert path.read_bytes()[:2] == b"\x1f\x8b"
        day = dt.date.fromisoformat(path.name[10:20])
        hours = library.hours_on(day)
        lines, cut = _lines(path)
        seen: dict[str, dict[str, str]] = defaultdict(dict)
        for line in lines[:-1] if cut else lines:
            f = line.split(",")
            if len(f) != 5 or not _is_time(f[0]) or f[4] != "PASS":
                continue
            t = dt.datetime.strptime(f[0], "%Y-%m-%d %H:%M:%S").time()
            assert hours.open <= t < hours.close
            seen[f[3]].setdefault(f[2], f[0])
        both = [v for v in seen.values() if len(v) == 2]
        # Defective lines may hide one half of a visit; the rest come in, then go out.
        assert len(both) > 0.95 * len(seen)
        assert all(v["IN"] < v["OUT"] for v in both)
    assert next(landing.glob("ezproxy/*.gz")).read_bytes()[:2] == b"\x1f\x8b"


def test_closed_on_holidays(tmp_path, library):
    report = generate(tmp_path, library, scale="tiny", seed=1, start=dt.date(2025, 9, 30), days=3)
    paths = {f.path for f in report.files}
    assert "circulation/statistics_2025-10-01.csv" not in paths
    assert "gates/turnstile_2025-10-01.csv.gz" not in paths
    assert "opac/search_history_2025-10-01.csv" in paths
    assert {"counter/2025-09", "counter/2025-10"} <= {str(Path(p).parent) for p in paths if p.startswith("counter/")}


def test_counter_reports(tiny):
    landing, _ = tiny
    tsvs = sorted(landing.glob("counter/2025-09/*.tsv"))
    assert len(tsvs) == 10 and len(list(landing.glob("counter/2025-09/*_DR_*.json"))) == 5
    for path in tsvs:
        raw = path.read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf")
        rows = raw.decode("utf-8-sig").split("\n")
        assert [r.split("\t")[0] for r in rows[:13]][:3] == ["Report_Name", "Report_ID", "Release"]
        assert rows[13].strip("\t") == ""
        head = rows[14].split("\t")
        assert head[-1] == "Sep-2025" and head[-2] == "Reporting_Period_Total"
        values: dict[tuple, dict[str, int]] = defaultdict(dict)
        for r in rows[15:]:
            if not r:
                continue
            rec = dict(zip(head, r.split("\t")))
            key = tuple(rec[c] for c in head[:head.index("Metric_Type")])
            values[key][rec["Metric_Type"]] = int(rec["Sep-2025"])
        assert values
        for m in values.values():
            g = lambda k: m.get(k, 0)
            assert g("Unique_Item_Requests") <= g("Total_Item_Requests") <= g("Total_Item_Investigations")
            assert g("Unique_Item_Investigations") <= g("Total_Item_Investigations")
            assert g("Unique_Item_Requests") <= g("Unique_Item_Investigations")
            assert g("Unique_Title_Requests") <= g("Unique_Item_Requests")
    for path in landing.glob("counter/2025-09/*.json"):
        doc = json.loads(path.read_text(encoding="utf-8"))
        assert doc["Report_Header"]["Report_ID"] == "DR" and doc["Report_Header"]["Release"] == "5.1"
        for item in doc["Report_Items"]:
            perf = item["Attribute_Performance"][0]["Performance"]
            g = lambda k: perf.get(k, {}).get("2025-09", 0)
            assert g("Unique_Item_Requests") <= g("Total_Item_Requests") <= g("Total_Item_Investigations")
            assert g("Unique_Item_Investigations") <= g("Total_Item_Investigations")


def test_counter_database_reports_add_up_to_the_platform_report(tiny):
    """COUNTER's identity between a platform's PR and its DR: the databases split the platform's item use."""
    landing, _ = tiny
    for dr_path in sorted(landing.glob("counter/2025-09/*_DR_*.json")):
        items = json.loads(dr_path.read_text(encoding="utf-8"))["Report_Items"]
        rows = dr_path.with_name(dr_path.name.replace("_DR_", "_PR_")).with_suffix(".tsv").read_text(
            encoding="utf-8-sig").split("\n")
        head = rows[14].split("\t")
        pr = [dict(zip(head, r.split("\t"))) for r in rows[15:] if r]
        for metric in ("Total_Item_Requests", "Total_Item_Investigations"):
            platform = sum(int(r["Reporting_Period_Total"]) for r in pr if r["Metric_Type"] == metric)
            databases = sum(perf.get(metric, {}).get("2025-09", 0) for item in items
                            for perf in (a["Performance"] for a in item["Attribute_Performance"]))
            assert platform == databases > 0, (dr_path.name, metric)


def test_encodings_and_line_endings(tiny):
    landing, _ = tiny
    searches = sorted(landing.glob("opac/*.csv"))
    gb = [p for p in searches if _not_utf8(p.read_bytes())]
    assert gb and len(gb) < len(searches)
    circ = [p.read_bytes() for p in sorted(landing.glob("circulation/*.csv"))]
    assert any(b"\r\n" in c for c in circ) and any(b"\r\n" not in c for c in circ)


def _not_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
        return False
    except UnicodeDecodeError:
        return True


def test_small_scale_is_fast_enough(tmp_path, library):
    report = generate(tmp_path, library, scale="small", seed=3, days=3)
    rows = report.rows_by_source()
    assert rows["patrons"] == SCALES["small"].patrons and rows["ezproxy"] > 10_000
    assert report.seconds < 10
