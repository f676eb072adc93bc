"""Deliberate defects in text files, at a known rate, one defect per line at most.

Every function returns the new lines and a count per defect kind, so the generation
report says exactly what a parser will find."""

from __future__ import annotations

import numpy as np

LINE_KINDS = ("malformed_line", "bad_timestamp", "duplicate_row")


def _garble_csv_time(line: str, rng: np.random.Generator) -> str:
    stamp, rest = line.split(",", 1)
    day, _, clock = stamp.partition(" ")
    # Keep the original clock time in the garbled value so two garbled lines stay distinct.
    if rng.random() < 0.5:
        y, _, d = day.split("-")
        bad = f"{y}-{13 + int(rng.integers(0, 7))}-{d} {clock}"
    else:
        bad = f"yesterday {clock}"
    return f"{bad},{rest}"


def _garble_ezproxy_time(line: str, rng: np.random.Generator) -> str:
    a = line.index("[")
    b = line.index("]", a)
    inner = line[a + 1:b]                     # 14/Mar/2025:10:02:03 +0800
    d, mon, rest = inner.split("/", 2)
    if rng.random() < 0.5:
        bad = f"{d}/{13 + int(rng.integers(0, 7))}/{rest}"
    else:
        bad = f"yesterday {rest[5:13]}"
    return f"{line[:a + 1]}{bad}{line[b:]}"


def _malform_csv(line: str, rng: np.random.Generator, existing: set[str]) -> str:
    fields = line.split(",")
    if rng.random() < 0.5:
        drop = int(rng.integers(1, len(fields)))
        out = ",".join(fields[:drop] + fields[drop + 1:])
        if out not in existing:
            return out
    at = int(rng.integers(1, len(fields) + 1))
    return ",".join(fields[:at] + ["x"] + fields[at:])


def _malform_ezproxy(line: str, rng: np.random.Generator, existing: set[str]) -> str:
    if rng.random() < 0.5:
        host, _ident, rest = line.split(" ", 2)   # drop the `%l` field
        out = f"{host} {rest}"
        if out not in existing:
            return out
    return f"{line} -"


def _truncate(line: str, rng: np.random.Generator, fmt: str) -> str:
    # Cut before the last separator, so fields are missing, not merely shortened.
    if fmt == "ezproxy":
        lo, hi = line.index('"') + 2, line.rindex('"')
    else:
        lo, hi = line.index(",") + 1, line.rindex(",")
    return line[:int(rng.integers(lo, max(hi, lo + 1)))]


def apply_line_defects(lines: list[str], rng: np.random.Generator, *, fmt: str, rate: float,
                       force: str | None = None, truncate: bool = False,
                       protected: frozenset[int] = frozenset()
                       ) -> tuple[list[str], dict[str, int], np.ndarray]:
    """Damage a share `rate` of `lines` (clean, in file order) with the LINE_KINDS, and the
    last line too when `truncate`. Lines in `protected` already carry a defect.

    Also returns which of `lines` were damaged (a parser rejects them); a duplicated line
    stays intact, its copy is extra."""
    n = len(lines)
    counts = {k: 0 for k in LINE_KINDS}
    damaged = np.zeros(n, bool)
    if n < 3:
        return lines, counts, damaged
    last = n - 1
    truncate = truncate and last not in protected
    candidates = np.setdiff1d(np.arange(n - 1 if truncate else n), np.fromiter(protected, int, len(protected)))
    want = rng.binomial(n, rate / len(LINE_KINDS), len(LINE_KINDS))
    if force in counts:
        want[LINE_KINDS.index(force)] = max(1, want[LINE_KINDS.index(force)])
    # Each duplicate needs its own clean original, which stays clean.
    cap = len(candidates) // (2 * len(LINE_KINDS))
    want = np.minimum(want, cap)
    chosen = rng.permutation(candidates)
    out = list(lines)
    existing = set(lines)
    pos = 0
    garble = _garble_ezproxy_time if fmt == "ezproxy" else _garble_csv_time
    malform = _malform_ezproxy if fmt == "ezproxy" else _malform_csv
    for idx in chosen[pos:pos + want[0]]:
        out[idx] = malform(out[idx], rng, existing)
    pos += want[0]
    for idx in chosen[pos:pos + want[1]]:
        out[idx] = garble(out[idx], rng)
    pos += want[1]
    counts["malformed_line"], counts["bad_timestamp"] = int(want[0]), int(want[1])
    damaged[chosen[:pos]] = True
    sources = np.sort(chosen[pos:pos + want[2]])
    counts["duplicate_row"] = len(sources)
    if truncate:
        out[last] = _truncate(out[last], rng, fmt)
        counts["truncated_line"] = 1
        damaged[last] = True
    if len(sources):
        end = last - 1 if truncate else last          # copies go before a cut last line
        after = np.where(rng.random(len(sources)) < 0.5, sources,
                         [int(rng.integers(s, end + 1)) if end >= s else s for s in sources])
        order = np.argsort(after, kind="stable")
        merged: list[str] = []
        prev = 0
        for k in order:
            p = int(after[k])
            merged.extend(out[prev:p + 1])
            merged.append(lines[int(sources[k])])
            prev = p + 1
        merged.extend(out[prev:])
        out = merged
    return out, counts, damaged
