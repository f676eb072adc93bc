"""FOLIO check-ins, requests and items exports as offices send them: Excel's Unicode text and
GB18030, JSON lines over the line limit, empty answers, and answers that cannot be one, refused
in one line (the loans file's cases are in test_landing_files.py)."""

from __future__ import annotations

import codecs
import dataclasses
import gzip
import json

import pytest
from click.testing import CliRunner

from assets import circulation
from assets.circulation import folio, folio_check_ins, folio_requests
from assets.reading import NO_BYTES
from pipelines.cli import main
from tests import hostile
from warehouse.textio import LandingFileError

STORAGE = "folio-org-mod-circulation-storage__"
ITEMS = "folio-org-mod-inventory-storage__sample-items.json"
POINTS = {"8bb53832-c9fb-47ef-986d-5b1a498a8b30": "EAST", "b0c3c66c-6738-4a61-a51e-8ef354d43e3d": "MED",
          "3a40852d-49fd-4df2-a1f9-6e2641a6e91f": "EAST"}
ENCODINGS = {"utf-16-le": codecs.BOM_UTF16_LE, "utf-16-be": codecs.BOM_UTF16_BE, "gb18030": b""}


@pytest.fixture
def folio_library(library):
    return dataclasses.replace(library, folio_service_points=POINTS, folio_default_branch="MAIN")


def _land(folder, data_dir, example, name, encoding="utf-8"):
    """An example answer and the items export beside it, with a note in Chinese, saved in ``encoding``."""
    folder.mkdir(parents=True, exist_ok=True)
    for source, target in ((ITEMS, "folio_items.json"), (f"{STORAGE}{example}", name)):
        text = (data_dir / "samples" / source).read_text(encoding="utf-8").replace("{", '{"note": "书库", ', 1)
        (folder / target).write_bytes(ENCODINGS.get(encoding, b"") + text.encode(encoding))
    return folder / name


def _same(a, b):
    assert a.rows.height > 0 and a.rows.equals(b.rows) and a.rejects.equals(b.rejects)


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
@pytest.mark.parametrize("example, parse", [("check-ins.json", circulation.parse), ("check-in.json", circulation.parse),
                                            ("requests.json", circulation.parse_holds),
                                            ("request.json", circulation.parse_holds)])
def test_check_ins_and_requests_read_in_every_encoding(tmp_path, data_dir, folio_library, encoding, example, parse):
    original = parse(_land(tmp_path / "a", data_dir, example, "answer.json"), folio_library)
    saved = parse(_land(tmp_path / "b", data_dir, example, "answer.json", encoding), folio_library)
    assert saved.encoding == encoding and saved.format == original.format
    _same(saved, original)


def test_an_items_export_in_unicode_text_or_one_line_resolves_items(tmp_path, data_dir, folio_library):
    original = folio.parse(_land(tmp_path / "a", data_dir, "sample-loan-nod-item.json", "loan.json"), folio_library)
    assert original.rows["item_resolution"].to_list() == ["items_export"]
    folder = tmp_path / "b"
    path = _land(folder, data_dir, "sample-loan-nod-item.json", "loan.json", "utf-16-le")
    _same(folio.parse(path, folio_library), original)
    # The whole export on one line, far over the line limit, and gzip JSON lines in GB18030.
    items = json.loads((data_dir / "samples" / ITEMS).read_text(encoding="utf-8"))
    (folder / "folio_items.json").write_text(json.dumps({**items, "padding": ["x" * 1000] * 100}), encoding="utf-8")
    _same(folio.parse(path, folio_library), original)
    (folder / "folio_items.json").unlink()
    lines = "".join(json.dumps({**i, "note": "书库"}, ensure_ascii=False) + "\n" for i in items["items"])
    (folder / "folio_items.jsonl.gz").write_bytes(gzip.compress(lines.encode("gb18030")))
    _same(folio.parse(path, folio_library), original)


@pytest.mark.parametrize("example, answer, parse", [("check-ins.json", "checkIns", folio_check_ins.parse),
                                                    ("requests.json", "requests", folio_requests.parse)])
def test_a_json_line_over_the_limit_is_quarantined_with_its_length(tmp_path, data_dir, folio_library, example,
                                                                  answer, parse):
    records = json.loads((data_dir / "samples" / f"{STORAGE}{example}").read_text(encoding="utf-8"))[answer]
    huge = json.dumps({**records[0], "note": "x" * (3 << 20)})
    path = tmp_path / "answer.jsonl"
    path.write_text("\n".join([huge] + [json.dumps(r) for r in records]) + "\n", encoding="utf-8")
    result = parse(path, folio_library)
    assert result.format.endswith("-jsonl") and result.rows.height > 0
    long = result.rejects.filter(result.rejects["reason"] == "line_too_long")
    assert long["source_line"].to_list() == [1] and len(long["raw_text"][0]) <= 200
    assert f"{len(huge):,} bytes" in long["detail"][0] and "landing_limits.max_line_bytes" in long["detail"][0]


@pytest.mark.parametrize("data, why", [(b"", NO_BYTES), (b"\r\n \n", NO_BYTES), (gzip.compress(b""), NO_BYTES),
                                       (b'{"requests": [], "totalRecords": 0}', "an answer without requests"),
                                       (codecs.BOM_UTF16_LE + "[]".encode("utf-16-le"), "an answer without requests")])
def test_an_empty_requests_file_is_empty(tmp_path, folio_library, data, why):
    path = tmp_path / "landing" / "holds" / "folio_requests_2025-09-01.json"
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    result = folio_requests.parse(path, folio_library)
    assert result.empty == why and result.rows_read == 0


@pytest.mark.parametrize("source, name, data, message", [
    ("holds", "folio_requests_2025-09-01.json", hostile.deep_json(100_000), "nested too deeply"),
    ("circulation", "folio_check_ins_2025-09-01.json",
     b'{"checkIns": [{"occurredDateTime": "' + b"T" * 100_000 + b'"}]}', "a JSON value of 100,000 bytes"),
])
def test_an_answer_that_cannot_be_one_is_refused_in_one_line(tmp_path, source, name, data, message):
    path = tmp_path / "landing" / source / name
    path.parent.mkdir(parents=True)
    path.write_bytes(data)
    result = CliRunner().invoke(main, ["parse", source, str(path)])
    assert result.exit_code == 2 and message in result.output and len(result.output.strip().splitlines()) == 1
    assert "T" * 300 not in result.output


def test_a_service_points_file_in_unicode_text_is_read(tmp_path, data_dir, library):
    folder = tmp_path / "landing" / "circulation"
    path = _land(folder, data_dir, "check-in.json", "folio_check_ins_2020-02-13.json")
    points = {"servicepoints": [{"id": "b0c3c66c-6738-4a61-a51e-8ef354d43e3d", "code": "MED"}]}
    (folder / "folio_service_points.json").write_bytes(
        codecs.BOM_UTF16_BE + json.dumps(points).encode("utf-16-be"))
    assert circulation.parse(path, library).rows["branch_code"].to_list() == ["MED"]
    (folder / "folio_service_points.json").write_bytes(b'{"servicepoints": ' + b"[" * 100_000)
    with pytest.raises(LandingFileError, match="folio_service_points.json"):
        circulation.parse(path, library)
