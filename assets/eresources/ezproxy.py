"""EZproxy logs in any ``LogFormat``, parsed vectorised with polars.

The LogFormat (``library.ezproxy_log_format`` or the ``log_format`` argument) is compiled
into one regular expression with a named group per directive, and every line is matched
at once with ``str.extract_groups``. The client address is generalised to its network
(IPv4 /24, IPv6 /48) here: the address itself is personal data and never leaves the parser.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from pathlib import Path

import polars as pl
import yaml

from assets.parsing import REJECT_SCHEMA, ParseResult, Reason
from warehouse.library import Library
from warehouse.textio import LandingFileError, decode, read_bytes

DEFAULT_LOG_FORMAT = '%h %l %u %t "%r" %s %b'
PLATFORMS_FILE = Path(__file__).with_name("platforms.yaml")

EZPROXY_SCHEMA = {
    "accessed_at": pl.Datetime("us"),
    "event_date": pl.Date,
    "client_network": pl.Utf8,
    "card_number": pl.Utf8,
    "session_id": pl.Utf8,
    "method": pl.Utf8,
    "url": pl.Utf8,
    "host": pl.Utf8,
    "path": pl.Utf8,
    "status": pl.Int32,
    "bytes": pl.Int64,
    "platform": pl.Utf8,
    "is_static": pl.Boolean,
    "is_failed": pl.Boolean,
    "source_line": pl.Int64,
}

# Requests for page furniture, not for content.
STATIC_PATH = r"(?i)\.(?:png|jpe?g|gif|bmp|ico|svg|webp|tiff?|css|js|mjs|map|woff2?|ttf|otf|eot)$"

# Directive → (group name, pattern when unquoted, pattern inside quotes). `%r` is split
# into method and URL right in the expression, so no second pass is needed.
_DIRECTIVES = {
    "h": ("client", r"\S+", r"[^\"]*"),
    "a": ("client", r"\S+", r"[^\"]*"),
    "l": (None, r"\S+", r"[^\"]*"),
    "u": ("user", r"\S+", r"[^\"]*"),
    "t": ("time", r"\[[^\]]*\]", r"\[[^\]]*\]"),
    "r": ("request", r"(?P<method>[A-Za-z]+) (?P<url>\S+)(?: \S+)?", r"(?P<method>[A-Za-z]+) (?P<url>[^\" ]+)(?: [^\"]*)?"),
    "s": ("status", r"\d{3}|-", r"\d{3}|-"),
    ">s": ("status", r"\d{3}|-", r"\d{3}|-"),
    "b": ("bytes", r"\d+|-", r"\d+|-"),
    "B": ("bytes", r"\d+", r"\d+"),
    "U": ("url_path", r"\S+", r"[^\"]*"),
    "q": ("query", r"\S*", r"[^\"]*"),
    "v": ("vhost", r"\S+", r"[^\"]*"),
    "T": (None, r"\d+|-", r"\d+|-"),
}
_HEADERS = {"ezproxy-session": "session", "ezproxy-groups": None}
_TOKEN = re.compile(r"%(?:\{([^}]*)\}([a-zA-Z])|(>?[a-zA-Z%]))")


class LogFormatError(ValueError):
    """The LogFormat string cannot be compiled."""


@lru_cache(maxsize=16)
def compile_log_format(log_format: str) -> str:
    """One anchored regular expression with named groups for a LogFormat string."""
    parts, used, pos = ["^"], set(), 0
    for m in _TOKEN.finditer(log_format):
        parts.append(_literal(log_format[pos:m.start()]))
        pos = m.end()
        quoted = m.start() > 0 and log_format[m.start() - 1] == '"' and log_format[pos:pos + 1] == '"'
        header, kind, simple = m.group(1), m.group(2), m.group(3)
        if simple == "%":
            parts.append("%")
            continue
        if header is not None:
            name = _HEADERS.get(header.lower(), f"hdr_{re.sub(r'[^0-9a-zA-Z]', '_', header).lower()}")
            unquoted, inside = r"\S*", r"[^\"]*"
        elif simple in _DIRECTIVES:
            name, unquoted, inside = _DIRECTIVES[simple]
        else:
            name, unquoted, inside = None, r"\S+", r"[^\"]*"   # a directive we do not keep
        pattern = inside if quoted else unquoted
        if name == "request" and "request" in used:
            pattern = re.sub(r"\(\?P<\w+>", "(?:", pattern)
        if name is None or name in used:
            parts.append(f"(?:{pattern})")
        elif name == "request":
            parts.append(pattern)
        else:
            parts.append(f"(?P<{name}>{pattern})")
        used.add(name)
    parts.append(_literal(log_format[pos:]))
    parts.append(r"\s*$")
    if "time" not in used:
        raise LogFormatError(f"LogFormat {log_format!r} has no %t; an access without a time cannot be used.")
    if "request" not in used and "url_path" not in used:
        raise LogFormatError(f"LogFormat {log_format!r} has neither %r nor %U; there is no URL to read.")
    return "".join(parts)


def _literal(text: str) -> str:
    # Any run of spaces in the format matches one or more spaces in the line.
    return r" +".join(re.escape(chunk) for chunk in re.split(r" +", text))


@lru_cache(maxsize=1)
def platform_suffixes() -> tuple[tuple[str, str], ...]:
    """(host suffix, platform), longest suffix first."""
    data = yaml.safe_load(PLATFORMS_FILE.read_text(encoding="utf-8")) or {}
    pairs = [(s.lower().strip("."), name) for name, suffixes in data.items() for s in suffixes]
    return tuple(sorted(pairs, key=lambda p: -len(p[0])))


def platform_of(host: str | None) -> str | None:
    """The platform a host belongs to; unknown hosts are their own platform."""
    if not host:
        return host
    for suffix, name in platform_suffixes():
        if host == suffix or host.endswith("." + suffix):
            return name
    return host


def _network(address: str | None) -> str | None:
    """An IPv6 (or odd IPv4) address → its network; anything else (a host name) → None."""
    try:
        ip = ipaddress.ip_address((address or "").strip("[]"))
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False))


def _lines(path: Path) -> tuple[pl.Series, str, bool]:
    """The lines, the encoding, and whether the last line was cut off (no final newline)."""
    text, encoding = decode(read_bytes(path), path)
    lines = text.split("\n")            # faster here than polars' str.split + explode
    cut_off = bool(lines) and lines[-1] != ""
    if not cut_off and lines:
        lines.pop()                       # the final newline ends a line, it adds none
    return pl.Series("raw_text", lines, dtype=pl.Utf8).str.strip_suffix("\r"), encoding, cut_off


def parse(path: Path, library: Library, log_format: str | None = None) -> ParseResult:
    """Accesses from one EZproxy log; lines that do not match the LogFormat are rejected."""
    path = Path(path)
    log_format = log_format or library.ezproxy_log_format or DEFAULT_LOG_FORMAT
    try:
        pattern = compile_log_format(log_format)
    except LogFormatError as exc:
        raise LandingFileError(f"{path}: {exc} Fix `ezproxy.log_format` in the library config.") from None
    raw, encoding, cut_off = _lines(path)
    frame = pl.DataFrame({"raw_text": raw}).with_row_index("source_line", offset=1).with_columns(
        pl.col("source_line").cast(pl.Int64),
        pl.col("raw_text").str.extract_groups(pattern).alias("g"),
    ).unnest("g")
    names = set(frame.columns)
    matched = pl.col("time").is_not_null()
    stamp = pl.col("time").str.strip_chars("[]").str.strptime(
        pl.Datetime("us", "UTC"), "%d/%b/%Y:%H:%M:%S %z", strict=False)
    frame = frame.with_columns(accessed_at=stamp)
    good = frame.filter(matched & pl.col("accessed_at").is_not_null())
    rejects = pl.concat([
        frame.filter(~matched).select(
            "source_line", "raw_text",
            reason=pl.when(pl.lit(cut_off) & (pl.col("source_line") == raw.len()))
            .then(pl.lit(str(Reason.TRUNCATED_LINE))).otherwise(pl.lit(str(Reason.MALFORMED_LINE))),
            detail=pl.when(pl.lit(cut_off) & (pl.col("source_line") == raw.len()))
            .then(pl.lit("last line cut off before its end (no final newline)"))
            .otherwise(pl.lit(f"line does not match LogFormat {log_format}"))),
        frame.filter(matched & pl.col("accessed_at").is_null()).select(
            "source_line", "raw_text", reason=pl.lit(str(Reason.BAD_TIMESTAMP)),
            detail=pl.lit("%t: ") + pl.col("time").str.slice(0, 40)
            + pl.lit(" is not [dd/Mon/yyyy:HH:MM:SS ±hhmm]")),
    ]).select(list(REJECT_SCHEMA)).cast(REJECT_SCHEMA).sort("source_line")

    if "url" in names:
        url, method = pl.col("url"), pl.col("method").str.to_uppercase()
    else:  # %U [%q] without %r
        url = pl.col("url_path") + (pl.col("query") if "query" in names else pl.lit(""))
        method = pl.lit(None, pl.Utf8)
    host_from_url = url.str.extract(r"^(?:[A-Za-z][A-Za-z0-9+.-]*://)?(?:[^@/?#]*@)?(\[[^\]]*\]|[^:/?#]+)", 1)
    if "vhost" in names:
        host_from_url = pl.when(url.str.starts_with("/")).then(pl.col("vhost")).otherwise(host_from_url)
    client = pl.col("client") if "client" in names else pl.lit(None, pl.Utf8)
    ipv4_net = client.str.extract(r"^(\d{1,3}\.\d{1,3}\.\d{1,3})\.\d{1,3}$", 1)
    rows = good.with_columns(
        accessed_at=pl.col("accessed_at").dt.convert_time_zone(library.timezone).dt.replace_time_zone(None),
        card_number=pl.col("user").replace("-", None) if "user" in names else pl.lit(None, pl.Utf8),
        session_id=(pl.col("session").replace({"-": None, "": None}) if "session" in names
                    else pl.lit(None, pl.Utf8)),
        method=method,
        url=url,
        host=host_from_url.str.to_lowercase(),
        status=pl.col("status").cast(pl.Int32, strict=False) if "status" in names else pl.lit(None, pl.Int32),
        bytes=(pl.col("bytes").replace("-", "0").cast(pl.Int64, strict=False).fill_null(0)
               if "bytes" in names else pl.lit(0, pl.Int64)),
        client_network=pl.when(ipv4_net.is_not_null()).then(ipv4_net + ".0/24")
        .when(client.str.contains(":")).then(client.map_elements(_network, return_dtype=pl.Utf8))
        .otherwise(pl.lit(None, pl.Utf8)),
    ).with_columns(
        event_date=pl.col("accessed_at").dt.date(),
        path=pl.when(pl.col("url").str.starts_with("/")).then(pl.col("url").str.extract(r"^([^?#]*)", 1))
        .otherwise(pl.col("url").str.extract(r"^(?:[A-Za-z][A-Za-z0-9+.-]*://)?[^/?#]*([^?#]*)", 1))
        .replace("", "/"),
        is_failed=pl.col("status").fill_null(0) >= 400,
    ).with_columns(
        is_static=pl.col("path").str.contains(STATIC_PATH).fill_null(False),
    )
    hosts = rows.get_column("host").unique().drop_nulls().to_list()
    rows = rows.with_columns(platform=pl.col("host").replace({h: platform_of(h) for h in hosts}))
    rows = rows.select([pl.col(c).cast(t) for c, t in EZPROXY_SCHEMA.items()])
    if rows.height == 0 and rejects.height > 0 and rejects.height == raw.len() and raw.len() >= 1:
        # Not one line fits: the file is not this log, or the LogFormat is wrong.
        if rejects.get_column("reason")[0] == str(Reason.MALFORMED_LINE) and raw.len() > 1:
            raise LandingFileError(
                f"{path}: line 1: no line matches LogFormat {log_format!r}; "
                "set `ezproxy.log_format` in the library config to the LogFormat of ezproxy.cfg.")
    return ParseResult(rows=rows, rejects=rejects, encoding=encoding, format="ezproxy-log",
                       metadata={"log_format": log_format, "pattern": pattern})


def summarise(result: ParseResult) -> dict:
    """Figures for the `shuku parse ezproxy` report (no card numbers in it)."""
    rows = result.rows
    accesses = rows.filter(~pl.col("is_static") & ~pl.col("is_failed"))
    platforms = (accesses.group_by("platform").len().sort(["len", "platform"], descending=[True, False]))
    return {
        "lines_read": result.rows_read,
        "requests": rows.height,
        "accesses": accesses.height,
        "static": int(rows.get_column("is_static").sum()),
        "failed": int(rows.get_column("is_failed").sum()),
        "rejected": dict(result.rejects.group_by("reason").len().sort("reason").iter_rows()),
        "distinct_users": rows.get_column("card_number").drop_nulls().n_unique(),
        "platforms": dict(platforms.iter_rows()),
    }
