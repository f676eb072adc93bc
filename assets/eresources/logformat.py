"""Proxy log formats compiled into one regular expression with a named group per field.

An EZproxy (or Apache) ``LogFormat`` string becomes an anchored expression; a field in quotes
may hold spaces and escaped quotes (``\\"``), and so may a text field that ends the line
(``%{User-Agent}i`` unquoted, as some ezproxy.cfg files write it). The word ``squid`` stands for
Squid's native access log (``logformat squid``), whose time is seconds since the epoch.
"""

from __future__ import annotations

import re
from functools import lru_cache

USER = "user"      # the group of `%u`, the reader's card number
SQUID = "squid"    # the `ezproxy.folders` value for Squid's native access log

_QUOTED = r'(?:[^"\\]|\\.)*'


# Directive → (group name, pattern when unquoted, pattern inside quotes). `%r` is split
# into method and URL right in the expression, so no second pass is needed. Digits are
# [0-9], not \d: Unicode's \d (every script's digits) keeps the regex engine from matching
# the line in one pass, which made the whole expression nearly three times slower.
_DIRECTIVES = {
    "h": ("client", r"\S+", _QUOTED),
    "a": ("client", r"\S+", _QUOTED),
    "l": (None, r"\S+", _QUOTED),
    "u": (USER, r"\S+", _QUOTED),
    "t": ("time", r"\[[^\]]*\]", r"\[[^\]]*\]"),
    "r": ("request", r"(?P<method>[A-Za-z]+) (?P<url>\S+)(?: \S+)?",
          r"(?P<method>[A-Za-z]+) (?P<url>[^\" ]+)(?: " + _QUOTED + ")?"),
    "s": ("status", r"[0-9]{3}|-", r"[0-9]{3}|-"),
    ">s": ("status", r"[0-9]{3}|-", r"[0-9]{3}|-"),
    "b": ("bytes", r"[0-9]+|-", r"[0-9]+|-"),
    "B": ("bytes", r"[0-9]+", r"[0-9]+"),
    "U": ("path_only", r"\S+", _QUOTED),
    "q": ("query", r"\S*", _QUOTED),
    "v": ("vhost", r"\S+", _QUOTED),
    "T": (None, r"[0-9]+|-", r"[0-9]+|-"),
}
# Fields whose text may hold spaces when they end the line unquoted.
_TEXT = {"client", USER, "path_only", "vhost", None}
_HEADERS = {"ezproxy-session": "session", "ezproxy-groups": None, "user-agent": "user_agent"}
# Directives EZproxy (or Apache, whose syntax it follows) writes that we read past.
_SKIPPED = set("ADfHkLmpPRVXIOS") | {"<s"}
# `%{name}X`: request header (i), expression (e), cookie (c, C), note (n), response header (o) …
_BRACED = set("ieocCnxtTpP")
_TOKEN = re.compile(r"%(?:\{([^}]*)\}([a-zA-Z])|([<>]?[a-zA-Z%]))")

# Squid's native format: time.ms elapsed client code/status bytes method URL user hierarchy/peer type
# (status 000: the request was aborted before an answer; it loads as a failed request)
SQUID_PATTERN = (r"^(?P<time>[0-9]{9,11}(?:\.[0-9]+)?) +[0-9]+ +(?P<client>\S+) +[A-Z_]+/(?P<status>[1-5][0-9][0-9]|000) +"
                 r"(?P<bytes>[0-9]+) +(?P<method>[A-Za-z_]+) +" r"(?P<url>\S+) +(?P<user>\S+) +\S+ +\S+\s*$")


# The request's URL split into host, path and query in the same pass, for its usual forms
# (scheme://host[:port]/path?query, /path?query); {x} is what the URL cannot hold in the field.
_SPLIT_URL = (r"(?P<url>(?:[A-Za-z][A-Za-z0-9+.-]*://(?P<url_host>\[[^\]{x}]*\]|[^\[:/?#@{x}][^:/?#@{x}]*)"
              r"(?::[0-9]*)?)?(?P<url_path>/[^?#{x}]*)?(?:[?#](?P<url_query>[^{x}]*))?)")


class LogFormatError(ValueError):
    """The LogFormat string cannot be compiled."""


def is_squid(log_format: str) -> bool:
    return log_format.strip().lower() == SQUID


@lru_cache(maxsize=16)
def compile_log_format(log_format: str, split_url: bool = False) -> str:
    """One anchored regular expression with named groups for a LogFormat string (or ``squid``).

    ``split_url``: the URL of ``%r`` also as ``url_host``, ``url_path`` and ``url_query``, in its
    usual forms only; a line whose URL has another form (or is empty) does not match that
    expression and is read with the plain one."""
    if is_squid(log_format):
        return SQUID_PATTERN
    parts, used, pos = ["^"], set(), 0
    tokens = list(_TOKEN.finditer(log_format))
    for index, m in enumerate(tokens):
        parts.append(_literal(log_format[pos:m.start()]))
        pos = m.end()
        quoted = m.start() > 0 and log_format[m.start() - 1] == '"' and log_format[pos:pos + 1] == '"'
        last = index == len(tokens) - 1 and not log_format[pos:].strip()
        header, kind, simple = m.group(1), m.group(2), m.group(3)
        if simple == "%":
            parts.append("%")
            continue
        if header is not None:
            if kind not in _BRACED:
                raise LogFormatError(f"LogFormat {log_format!r}: %{{{header}}}{kind} is not a LogFormat directive.")
            name = _HEADERS.get(header.lower(), f"hdr_{re.sub(r'[^0-9a-zA-Z]', '_', header).lower()}")
            if kind != "i":
                name = None
            unquoted, inside = r"\S*", _QUOTED
        elif simple in _DIRECTIVES:
            name, unquoted, inside = _DIRECTIVES[simple]
        elif simple in _SKIPPED:
            name, unquoted, inside = None, r"\S+", _QUOTED   # a directive we do not keep
        else:
            raise LogFormatError(f"LogFormat {log_format!r}: %{simple} is not a LogFormat directive.")
        pattern = inside if quoted else unquoted
        if last and not quoted and (name in _TEXT or name == "user_agent" or header is not None):
            pattern = r".*?"                         # the line's last field keeps its spaces
        if name == "request" and "request" in used:
            pattern = re.sub(r"\(\?P<\w+>", "(?:", pattern)
        elif name == "request" and split_url:
            url = _SPLIT_URL.format(x=r'" ' if quoted else r"\s")
            pattern = pattern.replace(r'(?P<url>[^\" ]+)' if quoted else r"(?P<url>\S+)", url)
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
    if "request" not in used and "path_only" not in used:
        raise LogFormatError(f"LogFormat {log_format!r} has neither %r nor %U; there is no URL to read.")
    return "".join(parts)


def _literal(text: str) -> str:
    # Any run of spaces in the format matches one or more spaces in the line.
    return r" +".join(re.escape(chunk) for chunk in re.split(r" +", text))
