"""Files of one source from a tiny generated library, with what the generator says it wrote."""

import datetime as dt
from pathlib import Path

from generator import generate


def generated_files(tmp_path: Path, library, source: str) -> list:
    """(file path, GeneratedFile) for every file of ``source`` a tiny seven-day run wrote."""
    landing = tmp_path / "landing"
    report = generate(landing, library, scale="tiny", seed=42, start=dt.date(2025, 9, 1), days=7)
    files = [(landing / f.path, f) for f in report.files if f.source == source]
    assert files, f"the generator wrote no {source} files"
    return files
