"""EZproxy logs in any ``LogFormat``, parsed vectorised with polars.

The LogFormat (that of the file's landing folder in the library config, or the
``log_format`` argument) is compiled into one regular expression with a named group per
directive, and every line is matched at once with ``str.extract_groups``. The client
address is generalised to its network (IPv4 /24, IPv6 /48) here: the address itself is
personal data and never leaves the parser.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from pathlib import Path, PurePosixPath

import polars as pl
import yaml

from assets.cards import CardField, LineCards
from assets.eresources.consultations import consultations, host_suffixes
from assets.eresources.logformat import USER, LogFormatError, compile_log_format, is_squid
from assets.parsing import CARD_NUMBER, REJECT_SCHEMA, ParseResult, Reason, row_schema
from warehouse.library import DEFAULT_LOG_FORMAT, Library
from assets.reading import NO_BYTES, LandingText, empty_result, read_landing_text
from warehouse.textio import LandingFileError

PLATFORMS_FILE = Path(__file__).with_name("platforms.yaml")
EZPROXY_SCHEMA = row_schema("ezproxy_access")

# Requests for page furniture, not for content.
STATIC_PATH = r"(?i)\.(?:png|jpe?g|gif|bmp|ico|svg|webp|tiff?|css|js|mjs|map|woff2?|ttf|otf|eot)$"

# Host, path and query of a URL. The usual forms (scheme://host[:port]/path?query, /path?query)
# in an expression that never has to guess (a one-pass match, several times faster); anything
# else (user@host, a host without scheme, CONNECT's host:port) by the general expression.
URL_PARTS = (r"^(?:[A-Za-z][A-Za-z0-9+.-]*://(?P<url_host>\[[^\]]*\]|[^\[:/?#@][^:/?#@]*)(?::[0-9]*)?)?"
             r"(?P<url_path>/[^?#]*)?(?:[?#](?P<url_query>.*))?$")
ANY_URL_PARTS = (r"^(?:[A-Za-z][A-Za-z0-9+.-]*://)?(?:(?:[^@/?#]*@)?(?P<url_host>\[[^\]]*\]|[^:/?#]+))?"
                 r"[^/?#]*(?P<url_path>[^?#]*)(?:[?#](?P<url_query>.*))?")
REVERSE_PROXY = r"^/https?/(?P<rp_host>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)(?::[0-9]+)?(?P<rp_path>/.*)?$"


@lru_cache(maxsize=8)
def platform_suffixes(extra: tuple[tuple[str, str], ...] = (), rules: Path | None = None) -> tuple[tuple[str, str], ...]:
    """(host suffix, platform), longest suffix first: platforms.yaml, the platform rules' hosts over
    it, and ``extra`` (the library's) over both."""
    data = yaml.safe_load(PLATFORMS_FILE.read_text(encoding="utf-8")) or {}
    pairs = {s.lower().strip("."): name for name, suffixes in data.items() for s in suffixes}
    pairs.update(host_suffixes(rules))
    pairs.update(extra)
    return tuple(sorted(pairs.items(), key=lambda p: -len(p[0])))


def _owner(host: str, suffixes: tuple[tuple[str, str], ...]) -> str | None:
    for suffix, name in suffixes:
        if host == suffix or host.endswith("." + suffix):
            return name
    return None


def platform_of(host: str | None, library: Library | None = None) -> str | None:
    """The platform a host belongs to (the library's `ezproxy.platforms` first); unknown hosts are their own.

    A host a proxy rewrote is recognised too: the platform's host with the proxy's name after it
    (`journals.cambridge.org.gate1.inist.fr`) or with dashes for dots (`dl-acm-org.proxy.univ.edu`).
    """
    if not host:
        return host
    extra = tuple(sorted(library.ezproxy_platforms.items())) if library is not None else ()
    suffixes = platform_suffixes(extra, library.ezproxy_rules if library is not None else None)
    found = _owner(host, suffixes)
    if found is None:
        labels = host.split(".")
        for cut in range(len(labels) - 1, 1, -1):        # the platform's host, the proxy's name after it
            found = _owner(".".join(labels[:cut]), suffixes)
            if found is not None:
                break
    first, _, rest = host.partition(".")
    parts = first.split("-")
    for cut in range(len(parts) - 1, 0, -1):             # www-thieme-connect.com, dl-acm-org.proxy.edu
        if found is not None:
            break
        name = ".".join(parts[:cut]) + "." + "-".join(parts[cut:])
        found = _owner(name, suffixes) or (_owner(f"{name}.{rest}", suffixes) if rest else None)
    return found if found is not None else host


def _is_proxy_host(host: str, proxy_hosts: tuple[str, ...]) -> bool:
    """A host of the proxy itself (`ezproxy.proxy_hosts`, or a name under one: `login.ezproxy.univ.edu`)."""
    return any(host == p or host.endswith("." + p) for p in proxy_hosts)


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


def url_parts(frame: pl.DataFrame) -> pl.DataFrame:
    """``url_host``, ``url_path``, ``url_query`` of the frame's ``url``, where the log's own
    expression has not split it already."""
    names = ("url_host", "url_path", "url_query")
    if "url_host" not in frame.columns:
        frame = frame.with_columns(**{name: pl.lit(None, pl.Utf8) for name in names})
    for pattern in (URL_PARTS, ANY_URL_PARTS):      # the usual forms, then any
        todo = frame.get_column("url_path").is_null() & frame.get_column("url_host").is_null()
        if not todo.any():
            break
        frame = frame.with_columns(__parts=pl.when(pl.lit(todo)).then(pl.col("url")).str.extract_groups(pattern))
        frame = frame.with_columns(**{name: pl.when(pl.lit(todo)).then(pl.col("__parts").struct.field(name))
                                      .otherwise(pl.col(name)) for name in names}).drop("__parts")
    return frame.with_columns(pl.col("url_path").fill_null(""))


def _lines(text: LandingText) -> tuple[pl.Series, str, bool]:
    """The lines, the encoding, and whether the last line was cut off (no final newline)."""
    # The reading layer's text is UTF-8 with \n line endings; polars splits it in Rust, several
    # times faster than str.split. A final newline ends a line, it adds none; blank lines stay.
    return pl.read_lines(text.data, name="raw_text").to_series(), text.encoding, not text.ends_with_newline


def landing_folder(path: Path, library: Library) -> str | None:
    """The file's folder relative to landing, found by the `ezproxy.folders` its path runs through."""
    parts = Path(path).absolute().parent.parts
    found: tuple[int, str] | None = None
    for key in library.ezproxy_folders:
        want = PurePosixPath(key).parts
        starts = [i for i in range(len(parts) - len(want) + 1) if parts[i:i + len(want)] == want]
        if starts and (found is None or len(want) > found[0]):
            found = (len(want), "/".join(parts[starts[-1]:]))
    return found[1] if found else None


def _log_format_of(path: Path, library: Library) -> tuple[str, str, str]:
    """(LogFormat, the config key it comes from, what to do when it does not fit) for a landing file."""
    folder = landing_folder(path, library)
    key = library.ezproxy_folder_for(folder) if folder is not None else None
    if key is None:
        return (library.ezproxy_log_format or DEFAULT_LOG_FORMAT, "ezproxy.log_format",
                f"set `ezproxy.log_format` in the library config ({library.source}) to the LogFormat of "
                f"ezproxy.cfg, or give folder {path.parent.name}/ its own under `ezproxy.folders`")
    return (library.ezproxy_folders[key], f"ezproxy.folders[{key!r}]",
            f"set `ezproxy.folders[{key!r}]` in the library config ({library.source}) to the LogFormat "
            f"of the ezproxy.cfg that wrote the logs in landing/{key}")


class LogUser(CardField):
    """The `%u` field of the LogFormat of a log's landing folder."""

    def cards(self, path: Path, lines: list[str], library: Library) -> LineCards:
        pattern = re.compile(compile_log_format(_log_format_of(path, library)[0]))
        cards: LineCards = []
        for line in lines:
            match = pattern.match(line.rstrip("\r\n"))
            if match and USER in pattern.groupindex:
                cards.append(match.group(USER))
            else:
                cards.append(library.card_regex().findall(line))
        return cards


CARDS = LogUser()


def parse(path: Path, library: Library, log_format: str | None = None) -> ParseResult:
    """Accesses from one EZproxy log; lines that do not match the LogFormat are rejected."""
    path = Path(path)
    if log_format:
        config_key, fix = None, "give the LogFormat of the ezproxy.cfg that wrote this log"
    else:
        log_format, config_key, fix = _log_format_of(path, library)
    try:
        pattern = compile_log_format(log_format)
    except LogFormatError as exc:
        raise LandingFileError(f"{path}: {exc} Fix it: {fix}.") from None
    text = read_landing_text(path, "ezproxy", library)
    if text.blank:
        return empty_result("ezproxy-log", text.encoding, NO_BYTES, EZPROXY_SCHEMA, {"log_format": log_format})
    raw, encoding, cut_off = _lines(text)
    split = compile_log_format(log_format, split_url=True)     # the URL's parts in the same pass
    frame = pl.DataFrame({"raw_text": raw}).with_row_index("source_line", offset=1).filter(
        ~pl.col("source_line").is_in([x.number for x in text.long_lines])).with_columns(
        pl.col("source_line").cast(pl.Int64),
        pl.col("raw_text").str.extract_groups(split).alias("g"),
    ).unnest("g")
    if split != pattern:    # a URL of another form (or none): the line is read with the plain expression
        missed = frame.select(pl.col("time").is_null() | (pl.col("url") == "")).to_series().arg_true()
        if missed.len():    # only those lines, their fields put back in place (no pass over the others)
            again = frame.select(pl.col("raw_text").gather(missed).str.extract_groups(pattern).alias("g")).unnest("g")
            frame = frame.with_columns(frame.get_column(name).clone().scatter(missed, again.get_column(name))
                                       for name in again.columns)
    names = set(frame.columns)
    matched = pl.col("time").is_not_null()
    squid = is_squid(log_format)
    if squid:   # seconds since the epoch, with milliseconds
        stamp = pl.from_epoch((pl.col("time").cast(pl.Float64, strict=False) * 1e6).cast(pl.Int64),
                              time_unit="us").dt.replace_time_zone("UTC")
    else:
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
            + pl.lit(" is not seconds since 1970" if squid else " is not [dd/Mon/yyyy:HH:MM:SS ±hhmm]")),
        text.rejects(),
    ]).select(list(REJECT_SCHEMA)).cast(REJECT_SCHEMA).sort("source_line")

    if "url" in names:
        url, method = pl.col("url"), pl.col("method").str.to_uppercase()
    else:  # %U [%q] without %r
        url = pl.col("path_only") + (pl.col("query") if "query" in names else pl.lit(""))
        method = pl.lit(None, pl.Utf8)
    parts = url_parts(good.with_columns(url=url).drop("query", strict=False))
    url = pl.col("url")
    host_from_url = pl.col("url_host")
    if "vhost" in names:   # `%v` may carry the port: host:port is the host
        host_from_url = pl.when(url.str.starts_with("/")).then(
            pl.col("vhost").str.replace(r":[0-9]+$", "")).otherwise(host_from_url)
    # A reverse proxy (Apache's mod_proxy, as some libraries run instead of EZproxy) writes the
    # platform's URL in the path: /http/host/path or /https/host:port/path.
    reverse = pl.col("url_path").str.extract_groups(REVERSE_PROXY)
    host_from_url = pl.when(reverse.struct.field("rp_host").is_not_null()).then(
        reverse.struct.field("rp_host")).otherwise(host_from_url)
    path_of_url = pl.when(reverse.struct.field("rp_host").is_not_null()).then(
        reverse.struct.field("rp_path").fill_null("/")).otherwise(pl.col("url_path"))
    client = pl.col("client") if "client" in names else pl.lit(None, pl.Utf8)
    ipv4_net = client.str.extract(r"^([0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3})\.[0-9]{1,3}$", 1)
    rows = parts.with_columns(
        accessed_at=pl.col("accessed_at").dt.convert_time_zone(library.timezone).dt.replace_time_zone(None),
        **{CARD_NUMBER: pl.col(USER).replace("-", None) if USER in names else pl.lit(None, pl.Utf8)},
        session_id=(pl.col("session").replace({"-": None, "": None}) if "session" in names
                    else pl.lit(None, pl.Utf8)),
        method=method,
        url=url,
        host=host_from_url.str.to_lowercase(),
        status=(pl.col("status").cast(EZPROXY_SCHEMA["status"], strict=False) if "status" in names
                else pl.lit(None, EZPROXY_SCHEMA["status"])),
        bytes=(pl.col("bytes").replace("-", "0").cast(pl.Int64, strict=False).fill_null(0)
               if "bytes" in names else pl.lit(0, pl.Int64)),
        client_network=pl.when(ipv4_net.is_not_null()).then(ipv4_net + ".0/24")
        .when(client.str.contains(":")).then(client.map_elements(_network, return_dtype=pl.Utf8))
        .otherwise(pl.lit(None, pl.Utf8)),
    ).with_columns(
        event_date=pl.col("accessed_at").dt.date(),
        path=path_of_url.replace("", "/"),
        query=pl.col("url_query").fill_null(""),
        # 4xx, 5xx, and Squid's 000 (aborted before an answer)
        is_failed=((pl.col("status") >= 400) | (pl.col("status") < 100)).fill_null(False),
    ).with_columns(
        is_static=pl.col("path").str.contains(STATIC_PATH).fill_null(False),
    )
    hosts = rows.get_column("host").unique().drop_nulls().to_list()
    owners = {h: platform_of(h, library) for h in hosts}
    rows = rows.with_columns(platform=pl.col("host").replace_strict(owners, default=None, return_dtype=pl.Utf8))
    known = pl.col("host").is_in([h for h, name in owners.items() if name != h])
    proxy = [h for h, name in owners.items() if name == h and _is_proxy_host(h, library.ezproxy_proxy_hosts)]
    rows = consultations(rows, known, library.ezproxy_rules, proxy_hosts=proxy)
    rows = rows.select([pl.col(c).cast(t) for c, t in EZPROXY_SCHEMA.items()])
    if rows.height == 0 and rejects.height > 0 and rejects.height == raw.len() and raw.len() >= 1:
        # Not one line fits: the file is not this log, or the LogFormat is wrong.
        if rejects.get_column("reason")[0] == str(Reason.MALFORMED_LINE) and raw.len() > 1:
            raise LandingFileError(f"{path}: line 1: no line matches LogFormat {log_format!r}; {fix}.")
    return ParseResult(rows=rows, rejects=rejects, encoding=encoding, format="ezproxy-log",
                       metadata={"log_format": log_format, "log_format_key": config_key, "pattern": pattern})


def summarise(result: ParseResult) -> dict:
    """Figures for the `shuku parse ezproxy` report (no card numbers in it): requests, consultation
    events (robots apart, before the 30-second rule), why the rest are none, and per platform."""
    rows = result.rows
    counted = rows.filter(pl.col("is_consultation") & ~pl.col("is_robot"))
    platforms = counted.group_by("platform").len().sort(["len", "platform"], descending=[True, False])
    return {
        "lines_read": result.rows_read,
        "requests": rows.height,
        "consultations": counted.height,
        "robots": int(rows.filter(pl.col("is_consultation")).get_column("is_robot").sum()),
        "not_consultations": dict(rows.group_by("skip_reason").len().drop_nulls("skip_reason").sort("skip_reason")
                                  .iter_rows()),
        "rejected": dict(result.rejects.group_by("reason").len().sort("reason").iter_rows()),
        "distinct_users": rows.get_column(CARD_NUMBER).drop_nulls().n_unique(),
        "platforms": dict(platforms.iter_rows()),
        "kinds": dict(counted.group_by("rtype").len().sort(["len", "rtype"], descending=[True, False]).iter_rows()),
    }
