"""What a generation run wrote: files, rows and the deliberate defects in each."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict, dataclass, field


@dataclass
class GeneratedFile:
    """One landing file. `rows` counts data lines (records for MARC, report rows for COUNTER),
    header lines excluded, defective and duplicate lines included."""

    path: str
    source: str
    rows: int
    defects: dict[str, int] = field(default_factory=dict)


@dataclass
class GenerationReport:
    """Every file a `generate` run wrote, with row and defect counts."""

    scale: str
    seed: int
    start: str
    days: int
    files: list[GeneratedFile] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, path: str, source: str, rows: int, defects: dict[str, int] | None = None) -> None:
        self.files.append(GeneratedFile(path, source, rows, {k: v for k, v in sorted((defects or {}).items()) if v}))

    def defects_by_source(self) -> dict[str, dict[str, int]]:
        """Source → defect kind → lines with that defect, over all files."""
        out: dict[str, dict[str, int]] = defaultdict(dict)
        for f in self.files:
            for kind, n in f.defects.items():
                out[f.source][kind] = out[f.source].get(kind, 0) + n
        return {s: dict(sorted(out[s].items())) for s in sorted(out)}

    def rows_by_source(self) -> dict[str, int]:
        """Source → data rows written, over all files."""
        out: dict[str, int] = defaultdict(int)
        for f in self.files:
            out[f.source] += f.rows
        return dict(sorted(out.items()))

    def to_dict(self) -> dict:
        return {"scale": self.scale, "seed": self.seed, "start": self.start, "days": self.days,
                "seconds": round(self.seconds, 2), "rows_by_source": self.rows_by_source(),
                "defects_by_source": self.defects_by_source(), "files": [asdict(f) for f in self.files]}
