"""Server-side validation of the Attention, Rank and Scale pages' URL and widget values."""
import pytest

from lora_app.config import ExploreConfig
from lora_app.config.attention import (
    AttentionConfig,
    attention_config,
    attention_url,
    fit_to_example,
    max_heads,
    sanitize_attention,
)
from lora_app.config.rank import RankConfig, sanitize_rank, target_edits
from lora_app.config.scale import (
    BENCH_DEFAULTS,
    PAPER_FIGURES,
    R_CHOICES,
    BenchConfig,
    ScaleConfig,
    bench_config,
    sanitize_scale,
    scale_config,
)
from lora_core.scale import MODELS, TARGETS

# --- attention ----------------------------------------------------------------------------

def test_attention_defaults_adapt_q_and_v():
    values, notices = sanitize_attention({})
    assert notices == []
    assert values == {"lora_q": True, "lora_k": False, "lora_v": True, "lora_o": False, "lora_ffn": False,
                      "heads": 1, "head": 1, "causal": False}
    cfg = attention_config(ExploreConfig(), values)
    assert cfg == AttentionConfig(ExploreConfig(), ("q", "v"), 1, False)
    assert attention_url(cfg, 1) == {"lora": "q,v", "heads": "1", "head": "1", "causal": "0"}


@pytest.mark.parametrize("raw,expected,words", [
    ({"lora": "q,embedding,zz"}, {"lora_q": True, "lora_v": False}, "`embedding`, `zz` is not a matrix"),
    ({"lora": "none"}, {"lora_q": False, "lora_v": False}, None),
    ({"lora": "FFN, o"}, {"lora_ffn": True, "lora_o": True, "lora_q": False}, None),
    ({"heads": "9"}, {"heads": 4}, "heads = `9` is outside 1…4"),
    ({"heads": "two"}, {"heads": 1}, "not a whole number"),
    ({"heads": "2", "head": "3"}, {"heads": 2, "head": 1}, "beyond the 2 head(s)"),
    ({"causal": "maybe"}, {"causal": False}, "causal = `maybe` is not 0 or 1"),
    ({"causal": "1"}, {"causal": True}, None),
])
def test_attention_url_values_are_checked(raw, expected, words):
    values, notices = sanitize_attention(raw)
    for key, value in expected.items():
        assert values[key] == value
    if words is None:
        assert notices == []
    else:
        assert len(notices) == 1 and words in notices[0]


def test_heads_fit_k_columns_each():
    assert max_heads(3) == 4 and max_heads(300) == 3 and max_heads(512) == 2 and max_heads(1024) == 1
    values, notes = fit_to_example({"heads": 4, "head": 4}, 512)
    assert values == {"heads": 2, "head": 2} and "using 2" in notes[0]
    assert fit_to_example({"heads": 2, "head": 2}, 3) == ({"heads": 2, "head": 2}, [])


def test_ffn_counts_but_is_not_an_attention_projection():
    cfg = AttentionConfig(ExploreConfig(), ("q", "o", "ffn"))
    assert cfg.projections == ("q", "o")


# --- rank ---------------------------------------------------------------------------------

@pytest.mark.parametrize("raw,decay,words", [
    ({}, 1.0, None), ({"decay": "2.5"}, 2.5, None), ({"decay": "0.3"}, 0.25, "not a multiple of 0.25"),
    ({"decay": "-1"}, 0.0, "in 0…3"), ({"decay": "abc"}, 1.0, "not a finite number"),
    ({"decay": "inf"}, 1.0, "not a finite number"),
])
def test_rank_url_values_are_checked(raw, decay, words):
    values, notices = sanitize_rank(raw)
    assert values == {"decay": decay}
    assert (notices == []) if words is None else (words in notices[0])
    assert RankConfig(ExploreConfig(), decay).url_params() == {"decay": f"{decay:g}"}


def test_target_edits_keep_the_cells_inside_the_current_size_in_order():
    cells = {(1, 2): 9.5, (0, 0): -1.0, (4, 0): 3.0, (0, 7): 2.0}  # checked cells, from the table editor
    assert target_edits(cells, 2, 3) == ((0, 0, -1.0), (1, 2, 9.5))
    assert target_edits(cells, 8, 8) == ((0, 0, -1.0), (0, 7, 2.0), (1, 2, 9.5), (4, 0, 3.0))
    assert target_edits({}, 5, 3) == ()


# --- scale --------------------------------------------------------------------------------

def test_scale_defaults_are_the_papers_checkpoint_example():
    values, notices = sanitize_scale({})
    # which GPU: one sequence of 512 tokens, gradient checkpointing and double quantization, as QLoRA trains
    assert notices == [] and values == {"model": "gpt3-175b", "targets": ["q", "v"], "scale_r": 4,
                                        "gpu_seq": 512, "gpu_batch": 1, "gpu_ckpt": True, "gpu_dq": True}
    cfg = scale_config(values)
    assert cfg == ScaleConfig("gpt3-175b", ("q", "v"), 4, 512, 1, True, True)
    assert cfg.url_params() == {"model": "gpt3-175b", "targets": "q,v", "scale_r": "4", "gpu_seq": "512",
                                "gpu_batch": "1", "gpu_ckpt": "1", "gpu_dq": "1"}


@pytest.mark.parametrize("raw,expected,words", [
    ({"model": "gpt5"}, {"model": "gpt3-175b"}, "model = `gpt5` is not a model"),
    ({"model": "Llama-3-8B"}, {"model": "llama-3-8b"}, None),
    ({"targets": "v,q,mlp"}, {"targets": ["q", "v"]}, "`mlp` is not a target"),
    ({"targets": "none"}, {"targets": []}, None),
    ({"targets": ""}, {"targets": []}, None),
    ({"scale_r": "0"}, {"scale_r": 1}, "not an offered rank"),
    ({"scale_r": "6"}, {"scale_r": 4}, "not an offered rank"),
    ({"scale_r": "eight"}, {"scale_r": 4}, "not a whole number"),
    ({"scale_r": "1e9"}, {"scale_r": 4}, "not a whole number"),
])
def test_scale_url_values_are_checked(raw, expected, words):
    values, notices = sanitize_scale(raw)
    for key, value in expected.items():
        assert values[key] == value
    assert (notices == []) if words is None else (len(notices) == 1 and words in notices[0])


def test_empty_targets_write_none_to_the_url():
    assert ScaleConfig("gpt2", (), 8).url_params()["targets"] == "none"
    assert scale_config({"model": "gpt2", "targets": None, "scale_r": 8}).targets == ()


def test_bench_sizes_snap_to_the_offered_choices():
    assert bench_config(BENCH_DEFAULTS) == BenchConfig(2048, 2048, 8, 64, 10)
    assert bench_config({"bench_d": 3000, "bench_k": "x", "bench_r": 0, "bench_n": 10**9, "bench_repeats": 4}) == \
        BenchConfig(2048, 2048, 1, 512, 3)


def test_paper_figures_name_real_models_and_targets():
    assert len(PAPER_FIGURES) >= 8
    for fig in PAPER_FIGURES:
        assert fig.model in MODELS and fig.tolerance < fig.paper / 5  # tight enough to tell 4.7M from 37.7M
        for targets, r in fig.configs:
            assert set(targets) <= set(TARGETS) and r in R_CHOICES
