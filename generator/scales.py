"""Named sizes of the synthetic library: readers, titles and daily volumes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    """Sizes of one synthetic library; daily volumes are for a normal term weekday."""

    name: str
    patrons: int
    titles: int
    gate_visits: int        # visits (an IN and an OUT each) per term weekday
    loans: int              # issues per term weekday (returns, renewals follow)
    local_uses: int         # in-library uses per term weekday
    searches: int           # OPAC searches per term day
    ezproxy_lines: int      # EZproxy log lines per term day
    journals: int           # COUNTER titles per platform
    defect_rate: float = 0.007   # share of lines with a deliberate defect


SCALES: dict[str, Scale] = {
    "tiny": Scale("tiny", patrons=400, titles=2_000, gate_visits=150, loans=70, local_uses=20,
                  searches=250, ezproxy_lines=500, journals=12),
    "small": Scale("small", patrons=3_000, titles=15_000, gate_visits=1_500, loans=450, local_uses=80,
                   searches=1_500, ezproxy_lines=6_000, journals=60),
    # A 50,000-reader university: ~10 M gate events, ~1.5 M circulation lines, ~3 M searches,
    # ~30 M EZproxy lines a year, and a catalogue of 1 M records.
    "university": Scale("university", patrons=50_000, titles=1_000_000, gate_visits=17_000, loans=2_600,
                        local_uses=500, searches=10_500, ezproxy_lines=105_000, journals=1_500),
}


def seat_share(scale: str) -> float:
    """The share of the configured library's seats a scale's readers fill as the university's readers
    fill all of them: seats in proportion to the visits made (the config's 5,481 seats are the
    university's; a small library's 3,000 readers fill about one in eleven of them)."""
    return SCALES[scale].gate_visits / SCALES["university"].gate_visits
