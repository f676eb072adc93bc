"""Pseudonymisation: keyed, stable, versioned, and the key stays outside the warehouse."""

import stat

import polars as pl
import pytest

from warehouse.pseudonym import Pseudonymiser, PseudonymKeyError


def test_key_file_is_created_private_and_reused(tmp_path):
    first = Pseudonymiser.load(tmp_path / "secrets", environ={})
    again = Pseudonymiser.load(tmp_path / "secrets", environ={})
    assert first.pid("2023104512") == again.pid("2023104512")
    mode = stat.S_IMODE((tmp_path / "secrets" / "pseudonym.key").stat().st_mode)
    assert mode == 0o600
    other = Pseudonymiser.load(tmp_path / "elsewhere", environ={})
    assert other.pid("2023104512") != first.pid("2023104512")


def test_environment_key_and_version(tmp_path):
    p = Pseudonymiser.load(tmp_path, environ={"SHUKU_PSEUDONYM_KEY": "00" * 32, "SHUKU_PSEUDONYM_KEY_VERSION": "3"})
    assert p.version == 3
    assert len(p.pid("x")) == 64
    with pytest.raises(PseudonymKeyError, match="SHUKU_PSEUDONYM_KEY is not hexadecimal"):
        Pseudonymiser.load(tmp_path, environ={"SHUKU_PSEUDONYM_KEY": "not-hex"})


def test_pseudonymise_replaces_the_card_column_in_place(tmp_path):
    p = Pseudonymiser.load(tmp_path, environ={})
    frame = pl.DataFrame({"a": [1, 2, 3], "card_number": ["2023104512", None, "2023104512"], "b": ["x", "y", "z"]})
    out = p.pseudonymise(frame)
    assert out.columns == ["a", "patron_pid", "pid_key_version", "b"]
    assert out["patron_pid"].to_list() == [p.pid("2023104512"), None, p.pid("2023104512")]
    assert out["pid_key_version"].to_list() == [1, None, 1]


def test_scrub_removes_cards_emails_and_phones(tmp_path):
    p = Pseudonymiser.load(tmp_path, environ={})
    text = "2023104512,王,小明,UG,xm.wang@example.edu.cn,13800001234"
    cleaned = p.scrub(pl.Series([text]), r"\b[0-9]{10}\b")[0]
    assert "2023104512" not in cleaned and "example.edu.cn" not in cleaned and "13800001234" not in cleaned
    assert f"pid:{p.pid('2023104512')}" in cleaned
