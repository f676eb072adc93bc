"""COUNTER_SUSHI JSON reports (Release 5 and 5.1), and the answers a SUSHI server gives in their place.

A harvester may store the answer as it came (a report, a bare exception, a list of exceptions,
a header without items), inside a `{"body": …, "response": …}` record of the HTTP exchange, or
as a JSON text of the answer: all are read here. An answer that carries only exceptions gives
no rows and its exceptions in ``metadata["exceptions"]``; any other structure is refused.
"""

from __future__ import annotations

import json
from pathlib import Path

from assets.eresources.counter_header import clean_heading, exceptions_from_json, header_of_json
from assets.eresources.counter_rows import HEADINGS, IDENTIFIERS, ITEM_COLUMNS, Rows, cell_value, month_of_period
from assets.parsing import ParseResult, Reason
from warehouse.textio import LandingFileError

# Keys of a Report_Header: a header-only answer may carry them at its top level.
HEADER_KEYS = {"Report_ID", "Report_Name", "Release", "Institution_ID", "Institution_Name", "Created",
               "Created_By", "Report_Filters", "Report_Attributes", "Exceptions", "Exception", "Customer_ID"}


class BadMonth(ValueError):
    pass


class NotAnItem(ValueError):
    pass


def _unwrap(doc, path: Path):
    """The SUSHI answer inside what was stored: a `{body, response}` record, or the answer's JSON text."""
    for _ in range(4):
        if isinstance(doc, str):
            try:
                doc = json.loads(doc)
            except json.JSONDecodeError:
                raise LandingFileError(f"{path}: a JSON string that is not a SUSHI answer; "
                                       "fetch the report again from the platform's SUSHI endpoint.") from None
        elif isinstance(doc, dict) and "body" in doc and not doc.keys() & {"Report_Header", "Report_Items"}:
            if doc["body"] in (None, "", {}, []):
                status = (doc.get("response") or {}).get("status") if isinstance(doc.get("response"), dict) else None
                raise LandingFileError(f"{path}: a stored SUSHI exchange with an empty body (HTTP status {status}); "
                                       "nothing to load: harvest the report again.")
            doc = doc["body"]
        else:
            return doc
    return doc


def _is_exception(value) -> bool:
    return isinstance(value, dict) and "Code" in value


def _root_exceptions(doc: dict) -> list:
    found = []
    for key in ("Exception", "Exceptions"):
        value = doc.get(key)
        found += value if isinstance(value, list) else [value] if value else []
    return found


def _exceptions_only(encoding: str, exceptions: list, header: dict | None = None) -> ParseResult:
    meta = header_of_json(header) if header else {"release": None, "report_id": None, "header": {}}
    found = meta.get("exceptions", [])
    meta["exceptions"] = found + [e for e in exceptions_from_json(exceptions) if e not in found]
    release = (meta.get("release") or "").replace(".", "")
    return Rows().result(encoding, f"counter-r{release}-json" if release else "counter-sushi-json", meta)


def parse_json(path: Path, text: str, encoding: str) -> ParseResult:
    try:
        doc = _unwrap(json.loads(text), path)
    except json.JSONDecodeError as exc:
        raise LandingFileError(f"{path}: is not valid JSON ({exc}); fetch the SUSHI report again.") from None
    if isinstance(doc, list) and doc and all(_is_exception(e) for e in doc):
        return _exceptions_only(encoding, doc)          # a server's bare list of exceptions
    if isinstance(doc, dict) and "Report_Header" not in doc and "Report_Items" not in doc:
        if _is_exception(doc):
            return _exceptions_only(encoding, [doc])    # one bare exception
        if doc.keys() & HEADER_KEYS and (doc.get("Report_ID") or _root_exceptions(doc)):
            # A header-only answer without its Report_Header wrapper.
            return _exceptions_only(encoding, _root_exceptions(doc), doc)
    if not isinstance(doc, dict) or not isinstance(doc.get("Report_Header"), dict):
        raise LandingFileError(
            f"{path}: JSON without a COUNTER_SUSHI `Report_Header` (nor a SUSHI exception); "
            "fetch the report again from the platform's SUSHI endpoint.")
    head = doc["Report_Header"]
    if "Report_Items" not in doc:
        return _exceptions_only(encoding, _root_exceptions(doc), head)
    items = doc["Report_Items"]
    if not isinstance(items, list):
        raise LandingFileError(f"{path}: `Report_Items` is a {type(items).__name__}, not a list of report items; "
                               "fetch the report again from the platform's SUSHI endpoint.")
    release, report_id = str(head.get("Release", "")), str(head.get("Report_ID", ""))
    metadata = header_of_json(head)
    metadata["exceptions"] += [e for e in exceptions_from_json(_root_exceptions(doc)) if e not in metadata["exceptions"]]
    out = Rows()
    lines = without_usage = 0
    for number, item in enumerate(items, 1):
        try:
            for child in _report_items(item):
                lines += 1
                added = _json_item(out, child, number, release, report_id)
                without_usage += not added
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            raw = json.dumps(item, ensure_ascii=False)[:4096]
            reason = Reason.BAD_TIMESTAMP if isinstance(exc, BadMonth) else (
                Reason.MALFORMED_LINE if isinstance(exc, NotAnItem) else Reason.BAD_NUMBER)
            out.reject(number, raw, reason, f"Report_Items[{number}]: {exc}"[:500])
    metadata["item_lines"], metadata["item_lines_without_usage"] = lines, without_usage
    return out.result(encoding, f"counter-r{release.replace('.', '')}-json", metadata)


def _report_items(item) -> list[dict]:
    """The items a Report_Item holds: itself, or (R5.1 Item Reports) the items nested under its parent."""
    if not isinstance(item, dict):
        raise NotAnItem(f"a {type(item).__name__}, not a report item")
    if "Items" in item:
        children = item["Items"]
        if not isinstance(children, list) or not all(isinstance(c, dict) for c in children):
            raise NotAnItem("`Items` is not a list of report items")
        return children
    return [item]


def _item_ids(raw) -> dict[str, str]:
    """R5 `[{Type, Value}]` or R5.1 `{DOI: …, Proprietary: …}` → our id columns."""
    pairs = raw.items() if isinstance(raw, dict) else ((i.get("Type"), i.get("Value")) for i in raw or () if isinstance(i, dict))
    ids = {}
    for kind, value in pairs:
        col = HEADINGS.get(clean_heading(str(kind)))
        if col in IDENTIFIERS and col not in ids and (v := cell_value(col, value)):
            ids[col] = v
    return ids


def _json_month(value):
    try:
        return month_of_period(str(value))
    except ValueError:
        raise BadMonth(f"period {value!r} is not a month (YYYY-MM)") from None


def _json_count(metric: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit():
        raise ValueError(f"{metric} count {value!r} is not a whole number")
    return int(value)


def _json_item(out: Rows, item: dict, number: int, release: str, report_id: str) -> bool:
    """Append every row of one report item, or raise before appending any; whether it had usage."""
    base = {col: cell_value(col, item.get(name)) for name, col in HEADINGS.items()
            if col not in IDENTIFIERS and col != "metric_type" and name in item}
    base.update(_item_ids(item.get("Item_ID")))
    staged = []
    if "Attribute_Performance" in item:            # R5.1
        for attrs in item["Attribute_Performance"] or ():
            merged = dict(base)
            merged.update({col: cell_value(col, attrs[name]) for name, col in HEADINGS.items()
                           if name in attrs and name != "Performance"})
            key = tuple(merged.get(col) for col in ITEM_COLUMNS)
            for metric, months in (attrs.get("Performance") or {}).items():
                for period, count in months.items():
                    staged.append((_json_month(period), key, metric, _json_count(metric, count)))
    elif "Performance" in item:                     # R5
        key = tuple(base.get(col) for col in ITEM_COLUMNS)
        for perf in item.get("Performance") or ():
            month = _json_month((perf.get("Period") or {}).get("Begin_Date"))
            for inst in perf.get("Instance") or ():
                metric = inst["Metric_Type"]
                staged.append((month, key, metric, _json_count(metric, inst.get("Count"))))
    else:
        raise NotAnItem("neither `Attribute_Performance` (R5.1), `Performance` (R5) nor `Items`: "
                        "not a COUNTER report item")
    for month, key, metric, count in staged:
        out.add(month, release, report_id, key, metric, count, number)
    return bool(staged)
