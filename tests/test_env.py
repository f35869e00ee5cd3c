"""lora_app.server.env: a server setting that is not a number ≥ 0 falls back to its default, with a warning naming it."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lora_app.server import env

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = ["abc", "nan", "NaN", "inf", "-inf", "-3", "1e400", "2,5", "<script>alert(1)</script>", "x" * 5000, "0x10"]


@pytest.mark.parametrize("raw", HOSTILE)
def test_a_bad_value_gives_the_default_and_names_the_variable(monkeypatch, caplog, raw):
    monkeypatch.setenv("LORA_TEST_RATE", raw)
    with caplog.at_level(logging.WARNING, logger="lora_app.server.env"):
        assert env.number("LORA_TEST_RATE", 2.0) == 2.0
    (record,) = caplog.records
    assert "LORA_TEST_RATE" in record.getMessage()
    assert len(record.getMessage()) < 200  # a 5,000-character value is echoed shortened


@pytest.mark.parametrize("raw, integer, want", [("4", True, 4), (" 4 ", True, 4), ("4.0", True, 4), ("0", True, 0),
                                                ("0.5", False, 0.5), ("8", False, 8.0), ("1e3", False, 1000.0)])
def test_a_good_value_is_read(monkeypatch, caplog, raw, integer, want):
    monkeypatch.setenv("LORA_TEST_RATE", raw)
    got = env.number("LORA_TEST_RATE", 99, integer=integer)
    assert got == want and type(got) is type(want) and not caplog.records


@pytest.mark.parametrize("raw", [None, "", "   "])
def test_unset_or_empty_is_the_default_without_a_word(monkeypatch, caplog, raw):
    if raw is None:
        monkeypatch.delenv("LORA_TEST_RATE", raising=False)
    else:
        monkeypatch.setenv("LORA_TEST_RATE", raw)
    assert env.number("LORA_TEST_RATE", 3, integer=True) == 3 and not caplog.records


def test_a_half_slot_is_refused(monkeypatch):
    monkeypatch.setenv("LORA_TEST_RATE", "1.5")
    assert env.number("LORA_TEST_RATE", 2, integer=True) == 2


def test_the_modules_that_read_settings_still_import_with_bad_ones():
    """LORA_RUN_SLOTS=abc or LORA_PACE_RATE=nan used to raise at import, and every page failed.
    In a fresh interpreter: these modules patch Streamlit once per process, so they are not reloaded here."""
    bad = {"LORA_RUN_SLOTS": "abc", "LORA_PACE_RATE": "nan", "LORA_MAX_SESSIONS": "-1", "LORA_ARRIVAL_RATE": "inf",
           "LORA_RERUN_RATE": "<b>2</b>", "LORA_CONNECT_RATE": "-5"}
    code = ("from lora_app.server import load_shedding, run_gate; "
            "print(run_gate.SLOTS == run_gate.default_slots(), load_shedding.PACE_RATE, load_shedding.MAX_SESSIONS, "
            "load_shedding.ARRIVAL_RATE, load_shedding.RERUN_RATE, load_shedding.CONNECT_RATE)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **bad},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["True", "8.0", "300", "3.0", "2.0", "10.0"]
    for name in bad:
        assert name in out.stderr  # each is named in the warning
