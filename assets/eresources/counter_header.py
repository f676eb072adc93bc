"""The header of a COUNTER R5/R5.1 report brought to one form, whether it came as a tabular
header block (TSV, CSV, XLSX) or as a COUNTER_SUSHI ``Report_Header`` (JSON): the same report
gives the same ``ParseResult.metadata`` (and the same meta.counter_reports row) in any format.
"""

from __future__ import annotations

import re

# Report_Filters that have their own header field (Reporting_Period, Metric_Types).
FILTERS_SHOWN_ELSEWHERE = ("Begin_Date", "End_Date", "Metric_Type")
SPACES = re.compile(r"\s+")
_EXCEPTION = re.compile(r"^\s*(\d{4})\s*:\s*([^(]*?)\s*(?:\((.*)\))?\s*$")
_PERIOD_RANGE = re.compile(r"(\d{4}-\d{2}(?:-\d{2})?)\s*to\s*(\d{4}-\d{2}(?:-\d{2})?)")


def clean_heading(heading: str) -> str:
    """A header name without the stray spaces some reports carry (`Reporting_ Period_Total`)."""
    return SPACES.sub("", heading.lstrip("\ufeff"))


def _exceptions_from_text(text: str) -> list[dict]:
    """Tabular `Exceptions` cell: `3030: No Usage Available for Requested Dates (data); …`."""
    found = []
    for part in re.split(r";\s*(?=\d{4}\s*:)", text or ""):
        if not part.strip():
            continue
        m = _EXCEPTION.match(part)
        if m:
            found.append({"code": int(m.group(1)), "message": m.group(2), "data": m.group(3)})
        else:
            found.append({"code": None, "message": part.strip(), "data": None})
    return found


def exceptions_from_json(items) -> list[dict]:
    if isinstance(items, dict):
        items = [items]
    found = []
    for e in items or ():
        if isinstance(e, dict):
            code = e.get("Code")
            found.append({"code": int(code) if str(code).isdigit() else code,
                          "message": e.get("Message"), "data": e.get("Data"), "severity": e.get("Severity")})
    return found


def _canonical(name: str) -> str:
    """A filter or attribute name as COUNTER spells it: some harvesters store `begin_date`, `yop`."""
    name = clean_heading(name)
    if name != name.lower():
        return name
    return "YOP" if name == "yop" else "_".join(part.capitalize() for part in name.split("_"))


def _values(value, separators: str = "|") -> list[str]:
    """A header value as a list: a JSON list, or text with ``separators`` between the values."""
    if value is None:
        return []
    items = value if isinstance(value, list) else re.split(f"[{re.escape(separators)}]", str(value))
    return [s for s in (str(v).strip() for v in items) if s]


def _name_values(raw) -> dict[str, list[str]]:
    """Report_Filters or Report_Attributes → {name: [values]}, from any of their three forms.

    Tabular `Name=a|b; Other=c`, R5 JSON `[{"Name": …, "Value": "a|b"}]`, R5.1 JSON `{"Name": ["a", "b"]}`.
    """
    if isinstance(raw, str):
        pairs = (p.split("=", 1) for p in raw.split(";") if "=" in p)
    elif isinstance(raw, list):
        pairs = ((f.get("Name"), f.get("Value")) for f in raw if isinstance(f, dict))
    elif isinstance(raw, dict):
        pairs = raw.items()
    else:
        pairs = ()
    return {_canonical(str(name)): values for name, value in pairs if name and (values := _values(value))}


def _institution_ids(raw) -> str | None:
    """`ISNI:1234…; Proprietary:pub:9` from tabular text, R5 `[{Type, Value}]` or R5.1 `{Type: [values]}`."""
    if isinstance(raw, list):
        ids = [f"{i.get('Type')}:{i.get('Value')}" for i in raw if isinstance(i, dict)]
    elif isinstance(raw, dict):
        ids = [f"{kind}:{v}" for kind, values in raw.items() for v in _values(values)]
    else:
        ids = _values(raw, ";")
    return "; ".join(ids) or None


def _period_from_text(text: str) -> dict:
    """Both R5 syntaxes: `Begin_Date=2022-01-01; End_Date=2022-12-31` and `2017-01-01 to 2017-06-30`."""
    parts = dict(p.split("=", 1) for p in (s.strip() for s in text.split(";")) if "=" in p)
    if "Begin_Date" in parts or "End_Date" in parts:
        return {"begin": parts.get("Begin_Date", "").strip() or None, "end": parts.get("End_Date", "").strip() or None}
    m = _PERIOD_RANGE.search(text)
    return {"begin": m.group(1), "end": m.group(2)} if m else {"begin": None, "end": None}


def header_of_table(header: dict[str, str]) -> dict:
    """The metadata of a tabular report from its header block (name → value, as the rows give them)."""
    return {
        "release": header.get("Release", ""), "report_id": header["Report_ID"], "report_name": header.get("Report_Name"),
        "institution_name": header.get("Institution_Name"),
        "institution_id": _institution_ids(header.get("Institution_ID")),
        "created": header.get("Created"), "created_by": header.get("Created_By"),
        "reporting_period": _period_from_text(header.get("Reporting_Period", "")),
        "metric_types": _values(header.get("Metric_Types"), ";|"),
        "report_filters": _name_values(header.get("Report_Filters", "")),
        "report_attributes": _name_values(header.get("Report_Attributes", "")),
        "exceptions": _exceptions_from_text(header.get("Exceptions", "")),
        "header": header,
    }


def header_of_json(head: dict) -> dict:
    """The metadata of a COUNTER_SUSHI report from its ``Report_Header``."""
    filters = _name_values(head.get("Report_Filters"))
    return {
        "release": str(head.get("Release", "")), "report_id": str(head.get("Report_ID", "")),
        "report_name": head.get("Report_Name"),
        "institution_name": head.get("Institution_Name"),
        "institution_id": _institution_ids(head.get("Institution_ID")),
        "created": head.get("Created"), "created_by": head.get("Created_By"),
        "reporting_period": {"begin": next(iter(filters.get("Begin_Date", ())), None),
                             "end": next(iter(filters.get("End_Date", ())), None)},
        "metric_types": filters.get("Metric_Type", []),
        "report_filters": {k: v for k, v in filters.items() if k not in FILTERS_SHOWN_ELSEWHERE},
        "report_attributes": _name_values(head.get("Report_Attributes")),
        "exceptions": exceptions_from_json(head.get("Exceptions")),
        "header": head,
    }


def describe(meta: dict) -> list[str]:
    """The header and exceptions of a report, for a librarian checking a file (`shuku parse counter`)."""
    period = meta.get("reporting_period") or {}
    lines = [f"report: {meta.get('report_id') or '(none: an answer without a report)'}"
             f" {meta.get('report_name') or ''}".rstrip() + f", release {meta.get('release') or '?'}",
             f"period: {period.get('begin') or '?'} to {period.get('end') or '?'}; "
             f"created {meta.get('created') or '?'} by {meta.get('created_by') or '?'}",
             f"institution: {meta.get('institution_name') or '?'} ({meta.get('institution_id') or 'no id'})"]
    for exc in meta.get("exceptions") or ():
        data = f" ({exc['data']})" if exc.get("data") else ""
        lines.append(f"exception {exc.get('code')}: {exc.get('message') or ''}{data}")
    if not meta.get("exceptions"):
        lines.append("exceptions: none")
    return lines
