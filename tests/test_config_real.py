"""Server-side validation of the Real model page's URL and widget values (lora_app.config.real)."""
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lora_app.config.explore import SEED_MAX
from lora_app.config.real import (
    ALPHA_MAX,
    ALPHA_MIN,
    DEFAULT_TEXT,
    DEFAULTS,
    LAYER_CHOICES,
    LORA_KEYS,
    LR_CHOICES,
    RANK_MAX,
    STEP_CHOICES,
    SWEEP_CHOICES,
    TARGETS,
    TEXT_MAX,
    WIDGET_KEYS,
    RealConfig,
    parse_sequence,
    real_config,
    real_url,
    sanitize_real,
)
from lora_core.finetune import FinetuneSettings, check_settings
from lora_core.tiny import ADAPT_TASKS, TinyConfig

URL_KEYS = ("real_lora", *DEFAULTS)


def defaults() -> dict:
    values, notices = sanitize_real({})
    assert notices == []
    return values


def test_the_defaults_are_the_cores_default_run_on_the_example_sequence():
    values = defaults()
    assert set(values) == set(WIDGET_KEYS)
    assert [t for t in TARGETS if values[LORA_KEYS[t]]] == ["q", "v"]
    cfg, problems = real_config(values, None)
    assert problems == []
    assert cfg == RealConfig(FinetuneSettings(), (3, 1, 4, 1, 5, 9, 2, 6), ("q", "v"))
    assert real_url(values) == {"real_lora": "q,v", "real_task": "reverse", "real_layers": "all", "real_r": "4",
                                "real_alpha": "8", "real_rslora": "0", "real_lr": "0.01", "real_steps": "300",
                                "real_seed": "0", "real_full": "0", "real_dora": "0", "real_text": DEFAULT_TEXT,
                                "real_sweep": "q+v"}


# --- the typed sequence ---------------------------------------------------------------------

@pytest.mark.parametrize("typed", ["3 1 4 1 5 9 2 6", "31415926", "3,1,4,1,5,9,2,6", " 3, 1;4 1\t5 9\n2 6 ", "3141 5926"])
def test_a_sequence_may_be_typed_with_or_without_spaces_and_commas(typed):
    assert parse_sequence(typed, 8) == (3, 1, 4, 1, 5, 9, 2, 6)


@pytest.mark.parametrize("typed,words", [
    ("", "the sequence is empty: type 8 digits from 0 to 9"),
    ("  , ;", "the sequence is empty"),
    ("3 1 4", "has 3 digits; the model reads exactly 8"),
    ("314159265", "has 9 digits; the model reads exactly 8"),
    ("3141592a", "holds `a`, which the model has no token for: its only tokens are the digits 0 to 9"),
    ("31415😀26", "which the model has no token for"),
    ("<script>1</script>", "which the model has no token for"),
    ("3.1415926", "holds `.`"),
    ("-3141592", "holds `-`"),
    ("٣١٤١٥٩٢٦", "which the model has no token for"),  # Arabic-Indic digits are not the model's tokens
    ("1" * (TEXT_MAX + 1), f"is {TEXT_MAX + 1:,} characters long; type 8 digits"),
    ("x" * 10_000, "is 10,000 characters long; type 8 digits"),
])
def test_a_sequence_the_model_cannot_read_is_refused_with_a_message_naming_the_problem(typed, words):
    with pytest.raises(ValueError) as e:
        parse_sequence(typed, 8)
    assert words in str(e.value).replace("\u2060", "")
    assert len(str(e.value)) < 300


def test_the_unknown_characters_are_named_three_of_them_and_each_once():
    with pytest.raises(ValueError) as e:
        parse_sequence("cabdefgaaa", 8)
    message = str(e.value).split(" holds ")[1]
    assert message.startswith("`a`, `b`, `c` and 2 more, which")  # sorted, each once: a..e, at most 5 looked at


# --- the URL ------------------------------------------------------------------------------

@pytest.mark.parametrize("raw,expected,words", [
    ({"real_lora": "q,embedding,zz"}, {"real_lora_q": True, "real_lora_v": False}, "`embedding`, `zz` is not a matrix"),
    ({"real_lora": "none"}, {"real_lora_q": False, "real_lora_v": False, "real_lora_ffn": False}, None),
    ({"real_lora": "FFN, o"}, {"real_lora_ffn": True, "real_lora_o": True, "real_lora_q": False}, None),
    ({"real_lora": "zz"}, {"real_lora_q": True, "real_lora_v": True}, "using real_lora=q,v"),
    ({"real_task": "sort"}, {"real_task": "reverse"}, "real_task = `sort` is not one of reverse, permute"),
    ({"real_task": "PERMUTE"}, {"real_task": "permute"}, None),
    ({"real_layers": "0"}, {"real_layers": "all"}, "real_layers = `0` is not one of all, 1, 2"),
    ({"real_layers": "2"}, {"real_layers": "2"}, None),
    ({"real_sweep": "q v"}, {"real_sweep": "q+v"}, None),
    ({"real_sweep": "ffn"}, {"real_sweep": "ffn"}, None),
    ({"real_sweep": "q+ffn"}, {"real_sweep": "q+v"}, "real_sweep = `q+ffn` is not one of"),
    ({"real_full": "maybe"}, {"real_full": False}, "real_full = `maybe` is not 0 or 1"),
    ({"real_full": "yes", "real_rslora": "1"}, {"real_full": True, "real_rslora": True}, None),
    ({"real_r": "40"}, {"real_r": 32}, "is above the width of this model's matrices"),  # the slider stops at 32
    ({"real_r": "0"}, {"real_r": 1}, "real_r = `0` is outside 1…32"),
    ({"real_r": "1000"}, {"real_r": RANK_MAX}, "is above the width of this model's matrices: each is 32 wide"),
    ({"real_r": "2.5"}, {"real_r": 4}, "real_r = `2.5` is not a whole number"),
    ({"real_seed": "-1"}, {"real_seed": 0}, "outside 0…"),
    ({"real_seed": "1e9"}, {"real_seed": 0}, "not a whole number"),
    ({"real_alpha": "1e9"}, {"real_alpha": ALPHA_MAX}, "is outside 0.25…256; using real_alpha=256"),
    ({"real_alpha": "0"}, {"real_alpha": ALPHA_MIN}, "using real_alpha=0.25"),
    ({"real_alpha": "nan"}, {"real_alpha": 8.0}, "real_alpha = `nan` is not a finite number"),
    ({"real_alpha": "16"}, {"real_alpha": 16.0}, None),
    ({"real_lr": "inf"}, {"real_lr": 1e-2}, "real_lr = `inf` is not a positive, finite learning rate"),
    ({"real_lr": "nan"}, {"real_lr": 1e-2}, "real_lr = `nan` is not a positive, finite learning rate"),
    ({"real_lr": "-1"}, {"real_lr": 1e-2}, "real_lr = `-1` is not a positive, finite learning rate"),
    ({"real_lr": "0"}, {"real_lr": 1e-2}, "is not a positive, finite learning rate"),
    ({"real_lr": "abc"}, {"real_lr": 1e-2}, "real_lr = `abc` is not a positive, finite learning rate"),
    ({"real_lr": "0.001"}, {"real_lr": 1e-3}, None),
    ({"real_lr": "0.002"}, {"real_lr": 3e-3}, "using the nearest, real_lr=0.003"),
    ({"real_lr": "5"}, {"real_lr": 0.1}, "using the nearest, real_lr=0.1"),
    ({"real_steps": "25"}, {"real_steps": 25}, None),
    ({"real_steps": "10"}, {"real_steps": 25}, "using the nearest, real_steps=25"),
    ({"real_steps": "1e12"}, {"real_steps": 2000}, "using the nearest, real_steps=2000"),
    ({"real_steps": "-5"}, {"real_steps": 300}, "is not a positive, finite number of steps"),
    ({"real_text": "27182818"}, {"real_text": "27182818"}, None),
    ({"real_text": "2718"}, {"real_text": DEFAULT_TEXT}, "has 4 digits; the model reads exactly 8; showing 3 1 4 1"),
    ({"real_text": "<script>alert(1)</script>"}, {"real_text": DEFAULT_TEXT}, "which the model has no token for"),
    ({"real_text": "9" * 10_000}, {"real_text": DEFAULT_TEXT}, "is 10,000 characters long"),
])
def test_real_url_values_are_checked(raw, expected, words):
    values, notices = sanitize_real(raw)
    for key, value in expected.items():
        assert values[key] == value, key
    if words is None:
        assert notices == []
    else:
        assert len(notices) == 1 and words in notices[0].replace("\u2060", ""), notices
        assert len(notices[0]) < 400


def is_valid_widget_state(values: dict) -> None:
    assert set(values) == set(WIDGET_KEYS)
    for t in TARGETS:
        assert isinstance(values[LORA_KEYS[t]], bool)
    assert values["real_task"] in ADAPT_TASKS and values["real_layers"] in LAYER_CHOICES
    assert values["real_sweep"] in SWEEP_CHOICES
    assert type(values["real_r"]) is int and 1 <= values["real_r"] <= RANK_MAX
    assert type(values["real_seed"]) is int and 0 <= values["real_seed"] <= SEED_MAX
    assert isinstance(values["real_alpha"], float) and ALPHA_MIN <= values["real_alpha"] <= ALPHA_MAX
    assert values["real_lr"] in LR_CHOICES and isinstance(values["real_lr"], float)
    assert values["real_steps"] in STEP_CHOICES and type(values["real_steps"]) is int
    assert type(values["real_rslora"]) is bool and type(values["real_full"]) is bool
    parse_sequence(values["real_text"], 8)


TEXT = st.one_of(st.text(max_size=80), st.text(alphabet="0123456789 ,;.-+eEinfa", max_size=20),
                 st.sampled_from(["inf", "-inf", "nan", "1e308", "-0", "0x10", "", " ", "none", "q,v", "1", "true"]),
                 # long text, 5,000 to 10,000 characters: a short drawn piece repeated (hypothesis draws a long
                 # st.text character by character, 50 ms an example, and the reader treats every character alike)
                 st.tuples(st.text(min_size=1, max_size=40, alphabet="x9 <>"), st.integers(5000, 10_000)).map(
                     lambda piece_length: (piece_length[0] * 10_000)[:piece_length[1]]))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(URL_KEYS + ("view", "real_zz")), TEXT))
def test_arbitrary_url_text_gives_valid_widget_values_and_bounded_notices(raw):
    values, notices = sanitize_real(raw)
    is_valid_widget_state(values)
    assert all(isinstance(n, str) and len(n) < 400 and "\n" not in n for n in notices)
    assert len(notices) <= len(raw)
    cfg, problems = real_config(values, None)  # whatever the URL held, the page has a config to run
    check_settings(TinyConfig(), cfg.settings)
    assert all(len(p) < 500 for p in problems)


VALID = st.fixed_dictionaries({
    **{key: st.booleans() for key in LORA_KEYS.values()},
    "real_task": st.sampled_from(ADAPT_TASKS), "real_layers": st.sampled_from(LAYER_CHOICES),
    "real_r": st.integers(1, RANK_MAX), "real_alpha": st.integers(25, 25_600).map(lambda c: c / 100),
    "real_rslora": st.booleans(), "real_lr": st.sampled_from(LR_CHOICES), "real_steps": st.sampled_from(STEP_CHOICES),
    "real_seed": st.integers(0, SEED_MAX), "real_full": st.booleans(), "real_dora": st.booleans(),
    "real_text": st.lists(st.sampled_from("0123456789"), min_size=8, max_size=8).flatmap(
        lambda ds: st.sampled_from(["".join(ds), " ".join(ds), ",".join(ds)])),
    "real_sweep": st.sampled_from(SWEEP_CHOICES),
})


@settings(max_examples=300, deadline=None)
@given(VALID)
def test_the_url_of_valid_values_reads_back_as_the_same_values(values):
    url = real_url(values)
    assert set(url) == set(URL_KEYS) and all(isinstance(v, str) for v in url.values())
    back, notices = sanitize_real(url)
    assert notices == []
    assert back == values


# --- the config: the last good one on each bad input ------------------------------------------

def good() -> RealConfig:
    values = {**defaults(), "real_r": 8, "real_seed": 5, "real_text": "27182818"}
    cfg, problems = real_config(values, None)
    assert problems == [] and cfg.settings.r == 8 and cfg.tokens == (2, 7, 1, 8, 2, 8, 1, 8)
    return cfg


@pytest.mark.parametrize("change,words", [
    ({"real_r": 40, "real_lora_v": False}, "r = 40 is above the width of the adapted matrices: a 32-wide matrix"),
    ({"real_r": 40, "real_lora_q": False, "real_lora_v": False, "real_lora_ffn": True}, "r can be at most 32 here"),
    ({"real_r": 64}, "r can be at most 32"),
    ({"real_lora_q": False, "real_lora_v": False}, "no target is ticked: choose at least one of Q, K, V, O and the FFN"),
    ({"real_lr": math.inf}, "the learning rate must be a finite number in (0, 1], got inf"),
    ({"real_lr": math.nan}, "the learning rate must be a finite number"),
    ({"real_lr": -1.0}, "the learning rate must be a finite number in (0, 1], got -1.0"),
    ({"real_alpha": math.nan}, "α must be a finite number"),
    ({"real_steps": 0}, "steps must be a whole number in 1…2000"),
    ({"real_seed": -3}, "the seed must be a whole number"),
])
def test_settings_no_run_can_use_keep_the_last_good_settings(change, words):
    last = good()
    values = {**defaults(), "real_text": "11112222", **change}
    cfg, problems = real_config(values, last)
    assert len(problems) == 1 and words in problems[0] and "the last settings that can run are kept" in problems[0]
    assert cfg.settings == last.settings
    assert cfg.tokens == (1, 1, 1, 1, 2, 2, 2, 2)  # the good part of the input is used
    fallback, _ = real_config(values, None)
    assert fallback.settings == FinetuneSettings()


def test_r_at_the_width_is_allowed_and_ffn_alone_takes_r_32():
    values = {**defaults(), "real_r": 32, "real_lora_q": False, "real_lora_v": False, "real_lora_ffn": True}
    cfg, problems = real_config(values, None)
    assert problems == [] and cfg.settings.targets == ("ffn",) and cfg.settings.r == 32


@pytest.mark.parametrize("typed,words", [("", "the sequence is empty"), ("1" * 10_000, "10,000 characters long"),
                                         ("1234567a", "holds `a`"), ("😀" * 8, "no token for"),
                                         ("<script>", "no token for")])
def test_a_sequence_that_cannot_be_read_keeps_the_last_good_one(typed, words):
    last = good()
    cfg, problems = real_config({**defaults(), "real_text": typed, "real_r": 2}, last)
    assert len(problems) == 1 and words in problems[0] and "the last sequence that could be read is kept" in problems[0]
    assert cfg.tokens == last.tokens and cfg.settings.r == 2
    assert real_config({**defaults(), "real_text": typed}, None)[0].tokens == (3, 1, 4, 1, 5, 9, 2, 6)


def test_the_settings_follow_the_widgets():
    values = {**defaults(), "real_task": "permute", "real_layers": "2", "real_lora_k": True, "real_lora_ffn": True,
              "real_r": 3, "real_alpha": 2.5, "real_rslora": True, "real_lr": 3e-3, "real_steps": 50, "real_seed": 9,
              "real_sweep": "v+o"}
    cfg, problems = real_config(values, None)
    assert problems == []
    assert cfg.settings == FinetuneSettings("permute", ("q", "k", "v", "ffn"), (1,), 3, 2.5, True, 3e-3, 50, 9, False)
    assert cfg.sweep == ("v", "o")
    full, _ = real_config({**values, "real_full": True, "real_lora_q": False, "real_lora_v": False,
                           "real_lora_k": False, "real_lora_ffn": False}, None)
    assert full.settings.full and not _  # full fine-tuning needs no target


def test_the_url_keeps_a_refused_value_so_the_link_says_what_was_typed():
    values = {**defaults(), "real_r": 40, "real_lora_v": False, "real_text": "abc"}
    url = real_url(values)
    assert url["real_r"] == "40" and url["real_lora"] == "q" and url["real_text"] == "abc"
