"""Server-side validation of URL and widget values, and of edited cells."""
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lora_app.config import DEFAULTS, DIM_CHOICES, ExploreConfig, parse_cell, sanitize


def test_empty_input_gives_the_seed_defaults_silently():
    values, notices = sanitize({})
    assert values == DEFAULTS and notices == []


def test_valid_values_pass_unchanged():
    raw = {"preset": "random", "seed": "42", "n": "4", "d": "8", "k": "6", "r": "3", "alpha": "16", "rslora": "1"}
    values, notices = sanitize(raw)
    assert notices == []
    assert values == {"preset": "random", "seed": 42, "n": 4, "d": 8, "k": 6, "r": 3, "alpha": 16.0, "rslora": True}


@pytest.mark.parametrize("raw,key,want,mentions", [
    ({"r": "0"}, "r", 1, "outside 1…min(d, k) = 3"),
    ({"r": "999"}, "r", 3, "outside"),
    ({"r": "two"}, "r", 2, "not a whole number"),
    ({"d": "abc"}, "d", 5, "not a whole number"),
    ({"d": "17"}, "d", 16, "not an offered size"),
    ({"d": "100000"}, "d", 1024, "not an offered size"),
    ({"n": "-3"}, "n", 1, "not an offered size"),
    ({"alpha": "nan"}, "alpha", 2.0, "not a finite number"),
    ({"alpha": "inf"}, "alpha", 2.0, "not a finite number"),
    ({"alpha": "1e9"}, "alpha", 64.0, "multiple of 0.5"),
    ({"preset": "evil"}, "preset", "seed", "not a preset"),
    ({"seed": "1.5"}, "seed", 0, "not a whole number"),
    ({"seed": "-1"}, "seed", 0, "outside"),
    ({"rslora": "maybe"}, "rslora", False, "not 0 or 1"),
])
def test_bad_values_are_clamped_or_dropped_with_a_notice(raw, key, want, mentions):
    values, notices = sanitize(raw)
    assert values[key] == want
    assert len(notices) == 1 and mentions in notices[0] and f"{key} = `" in notices[0]


def test_r_is_clamped_when_d_shrinks_below_it():
    values, notices = sanitize({"d": "2", "k": "3", "r": "3"})
    assert values["r"] == 2 and "min(d, k) = 2" in notices[0]


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(["preset", "seed", "n", "d", "k", "r", "alpha", "rslora", "junk"]),
                       st.one_of(st.text(max_size=8), st.integers(-10**12, 10**12).map(str),
                                 st.floats(allow_nan=True, allow_infinity=True).map(str))))
def test_any_input_yields_a_valid_config(raw):
    values, _ = sanitize(raw)
    cfg = ExploreConfig(**values)
    assert 1 <= cfg.r <= min(cfg.d, cfg.k) and cfg.d in DIM_CHOICES and cfg.k in DIM_CHOICES
    assert 1 <= cfg.n <= 64 and 0.5 <= cfg.alpha <= 64 and math.isfinite(cfg.scaling)
    assert sanitize(cfg.url_params()) == (values, [])  # what we write to the URL reads back unchanged


@pytest.mark.parametrize("raw,want", [
    ("0.25", 0.25), (" -3 ", -3.0), (7, 7.0), ("1e6", 1e6),
    # typed with an exponent, a cell means what it says (Streamlit's number editor turned 1e3 into 13)
    ("1e3", 1000.0), ("-2.5e-4", -2.5e-4), ("1E6", 1e6), ("+3E+2", 300.0), (".5", 0.5), ("5.", 5.0),
    ("−2", -2.0),  # the minus sign the app prints, pasted back
])
def test_parse_cell_accepts_numbers(raw, want):
    assert parse_cell(raw) == want


@pytest.mark.parametrize("raw,message", [
    (None, "is empty"), ("", "is empty"), ("abc", "`abc` is not a number"), ("nan", "`nan` is not a number"),
    (float("nan"), "NaN"), ("inf", "`inf` is not a number"), ("-inf", "is not a number"), ("1e7", "larger than the limit"),
    ("1e308", "larger than the limit"), ("1e400", "`1e400` is larger than the limit"), (float("inf"), "∞ is larger"),
    # what Python's float() reads but a typed number is not: digit separators, other scripts, a decimal comma
    ("1_000", "is not a number"), ("١٢", "is not a number"), ("１", "is not a number"),
    ("0,5", "write the decimal point as a point"), ("1e3e3", "is not a number"), ("0x10", "is not a number"),
    (True, "the editor sent bool"), ([1], "the editor sent list"), ("9" * 40, "40 characters long"),
])
def test_parse_cell_refuses_with_words(raw, message):
    with pytest.raises(ValueError, match=message):
        parse_cell(raw)


def test_notices_quote_url_values_safely():
    """A tampered value is shown as its characters in a code span (never markup), on one line, and a long one is cut."""
    from lora_app.config import quoted
    assert quoted("r", 999) == "r = `999`"
    assert quoted("view", "a`**b**`") == "view = `` a`**b**` ``"  # a longer fence: the value's backticks stay
    long = quoted("d", "x" * 5000)
    assert long == "d = `" + "x" * 39 + "… (5,000 characters)`"
    values, notices = sanitize({"preset": "`" + "y" * 100})
    assert values["preset"] == "seed" and len(notices) == 1 and "…" in notices[0]
    assert "preset = `` `" + "y" * 38 + "… (101 characters) ``" in notices[0]
