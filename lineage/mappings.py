"""Declared column lineage where no SQL says it: landing fields → staging columns (the
parsers), the config files → the reference dimensions, and the tables Python derives from
other warehouse tables.

Keyed by `layer.table`; each column names the landing fields (CSV headings, LogFormat
directives, MARC tags, COUNTER headings, config keys) it is made from. Pseudonymised and
generalised columns carry ``masking=True``. A column left out (source_file, the key
version) comes from no landing field.
"""

from __future__ import annotations

from lineage.columns import IDENTITY, TRANSFORMATION, Edge

LIBRARY_CONFIG = "library_config"   # input_table of edges whose input is the library config file
DISCIPLINES = "disciplines"         # ... whose input is the maintained list of disciplines (assets/opac)
ERESOURCE_COSTS = "eresource_costs"  # ... whose input is the library's e-resource cost table

PSEUDONYM = "HMAC-SHA256 pseudonym of the card number"


def _edges(table_input: str, columns: dict[str, tuple]) -> tuple[Edge, ...]:
    """Expand ``{column: (fields, description[, masking])}``; no description means a copy."""
    edges = []
    for column, (fields, description, *masking) in columns.items():
        for field in (fields,) if isinstance(fields, str) else fields:
            edges.append(Edge(column, table_input, field, "DIRECT",
                              TRANSFORMATION if description else IDENTITY,
                              description or "copied as is", bool(masking and masking[0])))
    return tuple(edges)


TS = "parsed as a local timestamp"
DAY = "date of the timestamp"
INT = "parsed as a whole number"

# A FOLIO record's item UUID, and what the items export beside it (folio_items.json) resolves it to.
FOLIO_ITEM = {
    "item_id": ("itemId", ""),
    "item_barcode": ("barcode", "the barcode of the item whose id is itemId, in the items export"),
    "call_number": ("effectiveCallNumberComponents", "the effective call number of the item whose id is itemId"),
    "item_resolution": ("itemId", "found in the items export, embedded, or not"),
}

# staging table -> declared edges; input_table is the landing feed's folder.
STAGING: dict[str, tuple[Edge, ...]] = {
    "staging.circulation_event": _edges("circulation", {
        "event_at": ("datetime", TS), "event_date": ("datetime", DAY), "branch_code": ("branch", ""),
        "event_type": ("type", ""), "item_number": ("itemnumber", INT), "item_type": ("itemtype", ""),
        "location": ("location", ""), "collection_code": ("ccode", ""), "category_code": ("categorycode", ""),
        "patron_pid": ("cardnumber", PSEUDONYM, True), **FOLIO_ITEM}),
    "staging.hold": _edges("circulation", {
        "placed_at": ("timestamp", TS), "event_date": ("timestamp", DAY), "reserve_id": ("reserve_id", INT),
        "pickup_branch_code": ("branchcode", ""), "bib_id": ("biblionumber", "white space trimmed"),
        "item_number": ("itemnumber", INT), "patron_pid": ("cardnumber", PSEUDONYM, True), **FOLIO_ITEM,
        "instance_id": ("instanceId", ""), "request_type": ("requestType", "")}),
    "staging.patron": _edges("patrons", {
        "patron_pid": ("cardnumber", PSEUDONYM, True), "category_code": ("categorycode", ""),
        "college": ("college", ""), "department": ("department", ""), "enrolment_year": ("enrolment_year", INT),
        "enrolled_date": ("dateenrolled", "parsed as a date"), "profiling_consent": ("profiling_consent", "Y/N as true/false")}),
    "staging.search": _edges("opac", {
        "searched_at": ("time", TS), "event_date": ("time", DAY), "session_id": ("sessionid", ""),
        "patron_pid": ("cardnumber", PSEUDONYM, True), "query_text": ("query_desc", ""),
        "query_normalised": ("query_desc", "NFKC, lower case, single spaces"), "search_type": ("type", ""),
        "hit_count": ("total", INT), "zero_hit": ("total", "total = 0")}),
    "staging.gate_event": _edges("gates", {
        "event_at": ("time", TS), "event_date": ("time", DAY), "gate_code": ("gate", ""),
        "direction": ("direction", ""), "result": ("result", ""), "patron_pid": ("card", PSEUDONYM, True)}),
    "staging.gate_count": _edges("gates", {
        "counted_at": ("timestamp", TS), "event_date": ("timestamp", DAY), "sensor_code": ("sensor", ""),
        "in_total": ("in_total", INT), "out_total": ("out_total", INT)}),
    "staging.ezproxy_access": _edges("ezproxy", {
        "accessed_at": ("%t", "parsed and converted to the library's time zone"), "event_date": ("%t", DAY),
        "client_network": ("%h", "generalised to its network (IPv4 /24, IPv6 /48)", True),
        "patron_pid": ("%u", PSEUDONYM, True), "session_id": ("%{ezproxy-session}i", ""),
        "method": ("%r", "method of the request line"), "url": ("%r", "URL of the request line"),
        "host": (("%r", "%v"), "host of the URL, lower case"), "path": ("%r", "path of the URL"),
        "status": ("%s", INT), "bytes": ("%b", INT),
        "platform": ("%r", "host looked up in platforms.yaml and the platform rules"),
        **{name: ("%r", f"{name} by the platform's rules (assets/eresources/platform_rules)") for name in (
            "rtype", "mime", "unitid", "doi", "print_identifier", "online_identifier", "title_id", "publication_date")},
        "is_consultation": (("%r", "%s"), "a success the platform's rules recognise, no static file or proxy page"),
        "skip_reason": (("%r", "%s"), "failed, redirect, static, proxy or unqualified"),
        "is_robot": ("%{User-Agent}i", "on COUNTER's list of robots and machines (counter-robots)"),
        "is_static": ("%r", "path is a static file"), "is_failed": ("%s", "status >= 400")}),
    "staging.counter_usage": _edges("counter", {
        "usage_month": ("Reporting_Period", "month column of the report, one row per month"),
        "release": ("Release", ""), "report_id": ("Report_ID", ""), "platform": ("Platform", ""),
        "database": ("Database", ""), "title": ("Title", ""), "publisher": ("Publisher", ""), "doi": ("DOI", ""),
        "isbn": ("ISBN", ""), "print_issn": ("Print_ISSN", ""), "online_issn": ("Online_ISSN", ""),
        "proprietary_id": ("Proprietary_ID", ""), "uri": ("URI", ""), "data_type": ("Data_Type", ""),
        "section_type": ("Section_Type", ""), "yop": ("YOP", ""), "access_type": ("Access_Type", ""),
        "access_method": ("Access_Method", ""), "metric_type": ("Metric_Type", ""),
        "usage_count": ("Reporting_Period", "count of the month's cell")}),
    "staging.bib_record": _edges("catalogue", {
        "bib_id": ("001", ""), "title": (("245$a", "245$b"), "subfields joined and cleaned"),
        "author": ("100$a", "trailing punctuation removed"), "publisher": (("264$b", "260$b"), "trailing punctuation removed"),
        "publication_year": (("264$c", "260$c", "008/07-10"), "first four-digit year"),
        "language": ("008/35-37", ""), "isbn": ("020$a", "ISBN without hyphens"), "issn": ("022$a", ""),
        "clc_class": ("084$a", "084 with $2 clc"), "lc_class": (("050$a", "090$a"), ""),
        "dewey_class": (("082$a", "092$a"), "without the `/` segment marks"),
        "subjects": (("650$a", "651$a", "600$a", "610$a"), "subject headings as a list")}),
    "staging.item": _edges("catalogue", {
        "item_number": ("952$9", INT), "barcode": ("952$p", ""), "bib_id": ("001", ""),
        "home_branch": ("952$a", ""), "location": ("952$c", ""), "call_number": ("952$o", ""),
        "item_type": ("952$y", ""), "acquired_date": ("952$d", "parsed as a date")}),
}

# The days dim_date has a row for; every column describing the day derives from them.
DAYS = ("partitions_start", "calendar.terms[].end", "calendar.holidays[].end")
# Where the discipline map's rows come from: CLC top classes, then the LC and Dewey prefixes.
PREFIX_LISTS = ("disciplines", "lc", "dewey")

# Reference table -> declared edges from its config file (YAML paths).
REFERENCE: dict[str, tuple[Edge, ...]] = {
    "core.dim_zone": _edges(LIBRARY_CONFIG, {
        "zone_code": ("branches[].zones[].code", ""), "zone_name": ("branches[].zones[].name", ""),
        "branch_code": ("branches[].code", ""), "branch_name": ("branches[].name", ""),
        "seat_capacity": ("branches[].zones[].seats", "")}),
    "core.dim_gate": _edges(LIBRARY_CONFIG, {
        "device_code": (("branches[].zones[].gates[]", "branches[].zones[].sensors[]"), "one row per gate and sensor"),
        "device_kind": (("branches[].zones[].gates[]", "branches[].zones[].sensors[]"), "gate or sensor, by the list it is in"),
        "zone_code": ("branches[].zones[].code", ""), "branch_code": ("branches[].code", "")}),
    "core.dim_reader_category": _edges(LIBRARY_CONFIG, {
        "category_code": ("loan_periods", "keys of the mapping"), "loan_period_days": ("loan_periods", "values of the mapping")}),
    "core.dim_date": _edges(LIBRARY_CONFIG, {
        "date_key": (DAYS, "every day from the first partition"), "year": (DAYS, "year of the day"),
        "month": (DAYS, "month of the day"), "iso_week": (DAYS, "ISO week of the day"),
        "weekday": (DAYS, "ISO weekday of the day, Monday 1"), "is_weekend": (DAYS, "day is a Saturday or Sunday"),
        "term_name": ("calendar.terms[].name", "term the day falls in"),
        "is_exam_week": ("calendar.terms[].exam_weeks", "day falls in an exam week"),
        "is_holiday": ("calendar.holidays[]", "day falls in a holiday"),
        "open_hour": (("opening_hours", "calendar.holidays[]"), "opening hour of the weekday, none on holidays"),
        "close_hour": (("opening_hours", "calendar.holidays[]"), "closing hour rounded up, none on holidays")}),
    "core.dim_service_standard": _edges(LIBRARY_CONFIG, {
        "transactions_per_staff_hour": ("service_standard.transactions_per_staff_hour", ""),
        "entries_per_staff_hour": ("service_standard.entries_per_staff_hour", ""),
        "minimum_staff": ("service_standard.minimum_staff", "")}),
    "core.dim_sensitive_class": _edges(LIBRARY_CONFIG, {
        "class_prefix": ("sensitive_classes", "upper case, letters and digits only")}),
    "core.dim_eresource_cost": _edges(ERESOURCE_COSTS, {
        "level": ("costs[].level", ""), "name": ("costs[].name", "surrounding spaces removed"),
        "cost_year": ("costs[].year", ""), "cost": ("costs[].cost", "")}),
    "core.dim_discipline": _edges(DISCIPLINES, {
        "discipline_code": ("disciplines", "keys of the mapping"), "name_zh": ("disciplines.*.zh", ""),
        "name_en": ("disciplines.*.en", "")}),
    "core.discipline_map": _edges(DISCIPLINES, {
        "scheme": (PREFIX_LISTS, "the list the prefix is in"),
        "class_prefix": (PREFIX_LISTS, "CLC codes as they are; LC and Dewey keys upper case, letters and digits only"),
        "discipline_code": (PREFIX_LISTS, "CLC codes as they are; LC and Dewey values")}),
}


FORECAST = "weekday-hour profile × kind-of-day factor, fitted on the hourly peaks summed per branch"
FACTOR = "the kind of day's factor"
BACKTEST = "forecast from each origin scored against the hourly peaks of the week after"
KIND = ("term_name", "is_exam_week", "is_holiday", "weekday")
OPEN = ("open_hour", "close_hour")
DEMAND = ("occupancy_peak", "event_date", "event_hour", "zone_code")   # a branch's demand in an hour
ZONED = "the zones summed into their branch"
SCORED = ("date_key",) + OPEN      # the open hours of the week after each origin that are scored

# Tables Python writes from other warehouse tables -> declared edges (input_table: the table read).
DERIVED: dict[str, tuple[Edge, ...]] = {
    "meta.consent": _edges("staging.patron", {
        "patron_pid": ("patron_pid", ""),
        "profiling": ("profiling_consent", "a change in the patron export (staff changes have no landing file)"),
        "recommendations": ("profiling_consent", "a change in the patron export (staff changes have no landing file)")}),
    # The seat demand model (assets/forecast.py): hourly peaks summed per branch (its zones, through
    # core.dim_zone), fitted per weekday-hour and kind of day. Its method and horizon are labels of
    # the code, read from nothing. Which branches, days and hours have rows is decided by the zones
    # that map to a branch and the open hours of the days.
    "marts.seat_demand_forecast": _edges("marts.space_utilisation", {
        "origin_date": (("event_date", "zone_code"), "last day of data (future), a week before it (holdout)"),
        "period": (("event_date", "zone_code"), "future after the last day of data, holdout for its last week"),
        "branch_code": ("zone_code", ZONED), "event_hour": ("zone_code", ZONED), "forecast_date": ("zone_code", ZONED),
        "demand_forecast": (DEMAND, FORECAST), "demand_lower": (DEMAND, FORECAST),
        "demand_upper": (DEMAND, FORECAST), "actual_demand": (DEMAND, "summed per branch and hour")})
    + _edges("core.dim_zone", {
        "branch_code": (("branch_code", "zone_code"), ZONED), "seat_capacity": ("seat_capacity", "summed per branch"),
        "origin_date": ("zone_code", ZONED), "period": ("zone_code", ZONED), "event_hour": ("zone_code", ZONED),
        "forecast_date": ("zone_code", ZONED), "demand_forecast": ("zone_code", ZONED),
        "demand_lower": ("zone_code", ZONED), "demand_upper": ("zone_code", ZONED), "actual_demand": ("zone_code", ZONED)})
    + _edges("core.dim_date", {
        "forecast_date": (("date_key", "is_holiday"), "open days after the origin"),
        "event_hour": (OPEN + ("is_holiday",), "open hours of the day"),
        "branch_code": ("is_holiday", "a branch has rows on open days"), "period": ("is_holiday", "open days"),
        "day_kind": (("term_name", "is_exam_week"), "term, exam or vacation"), "demand_forecast": (KIND, FACTOR),
        "demand_lower": (KIND, FACTOR), "demand_upper": (KIND, FACTOR)}),
    "marts.seat_demand_backtest": _edges("marts.space_utilisation", {
        "origin_date": (("event_date", "zone_code"), "every third day of the data"),
        "branch_code": ("zone_code", ZONED), "method": ("zone_code", ZONED),
        "hours_scored": (DEMAND, "open hours with demand above zero"),
        "mape": (DEMAND, BACKTEST), "peak_error": (DEMAND, BACKTEST), "interval_coverage": (DEMAND, BACKTEST)})
    + _edges("core.dim_zone", {
        "branch_code": (("branch_code", "zone_code"), ZONED), "origin_date": ("zone_code", ZONED),
        "method": ("zone_code", ZONED), "hours_scored": ("zone_code", ZONED), "mape": ("zone_code", ZONED),
        "peak_error": ("zone_code", ZONED), "interval_coverage": ("zone_code", ZONED)})
    + _edges("core.dim_date", {"hours_scored": (OPEN + ("is_holiday",), "open hours of the day"),
                               "mape": (KIND + SCORED, FACTOR), "peak_error": (KIND + SCORED, FACTOR),
                               "interval_coverage": (KIND + SCORED, FACTOR)}),
}


def declared_edges(table: str) -> tuple[Edge, ...]:
    """The declared edges of a staging, reference or derived table (empty for others)."""
    return STAGING.get(table) or REFERENCE.get(table) or DERIVED.get(table) or ()
