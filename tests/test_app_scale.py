"""AppTest of the Scale page: counts on real models, the paper's figures beside them, and the live benchmark."""
import re

import numpy as np
import pytest

from helpers import decode, figures
from lora_app import text
from lora_app.compute.scale import PaperCheck, verdict_text
from lora_app.config.scale import PAPER, PAPER_FIGURES, R_CHOICES, PaperFigure
from lora_core.scale import MODELS, TARGETS, human_bytes

PAGE = "pages/scale.py"


@pytest.fixture
def at(app_test):
    app_test.run()
    return app_test.switch_page(PAGE).run()


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def memory_totals(at) -> np.ndarray:
    """GB per bar (LoRA, full fine-tuning), summed over the stacked parts."""
    spec = next(s for title, s in figures(at).items() if title.startswith("Training memory"))
    return np.sum([decode(t["x"]) for t in spec["data"]], axis=0)


def texts(at) -> list[str]:
    """Every paragraph the page writes: markdown, captions, and the comparison tables' cells."""
    cells = [str(v) for t in at.table for v in t.value.to_numpy().ravel()]
    return [flat(m.value) for m in at.markdown] + [flat(c.value) for c in at.caption] + cells


def flat(text: str) -> str:
    """Markdown's line breaks are spaces when rendered."""
    return " ".join(text.split())


def paper_rows(at) -> list[dict]:
    """The comparison with the paper, every row of its tables, keyed by column."""
    return [row for t in paper_tables(at) for row in t.value.to_dict("records")]


def paper_tables(at) -> list:
    """The tables of the comparison with the paper (the which-GPU part has tables of its own)."""
    return [t for t in at.table if "the paper" in t.value.columns]


def leading_number(cell: str) -> float:
    return float(re.match(r"[\d,.]+", cell).group(0).replace(",", ""))


# --- independent counts: the paper's formula and GPT-2's layout, written out from REFERENCE.md ---------

D3, L3 = 12288, 96  # GPT-3 175B: d_model and layers


def lora_formula(matrices: int, d: int, r: int, layers: int) -> int:
    """The paper's count for square d_model × d_model matrices: 2 × matrices × d_model × r, in every layer."""
    return 2 * matrices * d * r * layers


def gpt_total(vocab: int, context: int, d: int, layers: int) -> int:
    """GPT-2's layout: embeddings, per layer 12·d² + 13·d (attention, MLP of 4d, 2 LayerNorms), a last LayerNorm."""
    return (vocab + context) * d + layers * (12 * d * d + 13 * d) + 2 * d


GPT3 = gpt_total(50257, 2048, D3, L3)
ADAPTER = lora_formula(2, D3, 4, L3)  # r = 4 on W_q and W_v, the paper's checkpoint


def test_opens_on_gpt3_at_r_4_on_q_and_v_the_papers_35_mb_adapter(at):
    assert not at.exception
    m = metrics(at)
    assert m["Trainable parameters"] == f"{ADAPTER:,}" == "18,874,368"
    assert m["Adapter file, fp16"] == "37.7 MB" and m["Whole model file, fp16"] == "349 GB"
    assert m["Training memory, LoRA"] == "350 GB"
    np.testing.assert_allclose(memory_totals(at), [(2 * GPT3 + 16 * ADAPTER) / 1e9, 16 * GPT3 / 1e9], rtol=1e-9)
    assert {"model": "gpt3-175b", "targets": "q,v", "scale_r": "4"}.items() <= {
        k: v if isinstance(v, str) else v[0] for k, v in at.query_params.items()}.items()


def test_gpt3_states_the_papers_own_total_beside_this_pages(at):
    note = next(flat(c.value) for c in at.caption if "Table 4" in c.value)
    assert f"{GPT3:,}" in note and "175,255.8M" in note
    assert f"{(175_255.8e6 - GPT3) / 1e6:,.1f}M more" in note  # 651.5M
    row = next(r for r in paper_rows(at) if r["the paper"] == "175,255.8M")
    assert row["where in the paper"] == "Table 4" and row["this app, same conditions"].startswith(f"{GPT3:,}")
    assert row["agrees"].startswith("✗ no")


def test_every_paper_figure_names_where_and_under_which_conditions(at):
    rows = paper_rows(at)
    assert len(paper_tables(at)) == 3 and len(rows) == 18
    for row in rows:
        assert re.search(r"Table \d+|Section \d\.\d|Appendix D\.4|[Ff]ootnote \d|abstract", row["where in the paper"])
        assert row["what the paper counts, and its conditions"] and row["the paper"]
        assert row["agrees"].split(",")[0] in ("✓ yes", "≈ roughly", "✗ no")


def test_37_7m_is_credited_only_to_the_configurations_the_paper_names(at):
    rows = [r for r in paper_rows(at) if r["the paper"] == "37.7M"]
    agreeing = [r for r in rows if r["agrees"] == "✓ yes"]
    assert len(agreeing) == 1
    cond = agreeing[0]["what the paper counts, and its conditions"]
    # Appendix D.4 and Table 15 give r_q = r_v = 8; Table 15 alone gives r = 4 on all four
    assert "r_q = r_v = 8 (D.4, Table 15)" in cond and "r_q = r_k = r_v = r_o = 4 (Table 15)" in cond
    assert "Table 15" in agreeing[0]["where in the paper"]
    assert agreeing[0]["this app, same conditions"].startswith(f"{lora_formula(2, D3, 8, L3):,}")
    assert lora_formula(2, D3, 8, L3) == lora_formula(4, D3, 4, L3) == 37_748_736
    # D.4 also names r = 2 on all four for 37.7M: that is 18.9M by the formula, and the table says so
    slip = next(r for r in rows if r["where in the paper"] == "Appendix D.4")
    assert "r_q = r_k = r_v = r_o = 2" in slip["what the paper counts, and its conditions"]
    assert slip["this app, same conditions"].startswith(f"{lora_formula(4, D3, 2, L3):,}")
    assert slip["agrees"].startswith("✗ no")
    # and Section 7.1 pairs r = 2 on all four with its 18M budget, as Table 5 does
    budget = next(r for r in paper_rows(at) if r["the paper"] == "18M")
    assert "Section 7.1" in budget["where in the paper"] and "Table 5" in budget["where in the paper"]
    assert "r = 2 on all four" in budget["what the paper counts, and its conditions"]
    assert budget["agrees"] == "✓ yes"
    # no sentence anywhere gives 37.7M to r = 4 on all four without naming Table 15
    for sentence in texts(at):
        if "37.7M" in sentence and re.search(r"r = 4 on (q, k, v|W_q, W_k, W_v)", sentence):
            assert "Table 15" in sentence, sentence


def test_the_papers_training_memory_sits_beside_this_count(at):
    memory = {r["the paper"]: r for r in paper_tables(at)[2].value.to_dict("records")}
    full, lora, ratio = memory["1.2TB"], memory["350GB"], memory[f"{1.2e12 / 350e9:.1f}×"]
    assert full["this app, same conditions"] == human_bytes(16 * GPT3) == "2.79 TB"
    assert full["agrees"] == f"✗ no, +{16 * GPT3 / 1.2e12 - 1:.1%}"
    assert "measured" in full["what the paper counts, and its conditions"]
    assert lora["this app, same conditions"] == human_bytes(2 * GPT3 + 16 * ADAPTER) and lora["agrees"] == "✓ yes"
    assert ratio["this app, same conditions"] == f"{16 * GPT3 / (2 * GPT3 + 16 * ADAPTER):.1f}×" == "8.0×"
    assert "3 times" in ratio["what the paper counts, and its conditions"] and ratio["agrees"].startswith("✗ no")
    notes = " ".join(flat(m.value) for m in at.markdown)
    assert "16 bytes for each parameter" in notes and "no activations" in notes
    assert f"{1.2e12 / 175_255.8e6:.1f} bytes for each" in notes  # 6.8: what the paper's 1.2TB can hold
    # the metric and its caption say what the page counts, and what the paper measured
    delta = next(m.proto.delta for m in at.metric if m.label == "Training memory, LoRA")
    assert delta == "8.0× less than full's 2.79 TB, as counted below"
    caption = next(flat(c.value) for c in at.caption if c.value.lstrip().startswith("A count, not a measurement"))
    assert "1.2TB" in caption and "350GB" in caption and "3.4× less" in caption and "activations" in caption


def test_the_paper_says_roughly_and_nothing_rounds(at):
    assert not any("rounds" in text for text in texts(at))
    files = {r["the paper"]: r for r in paper_tables(at)[1].value.to_dict("records")}
    adapter = files["roughly 35MB"]
    assert adapter["this app, same conditions"] == f"{human_bytes(2 * ADAPTER)} ({2 * ADAPTER / 2**20:.1f} MiB)"
    assert adapter["agrees"] == f"≈ roughly, +{2 * ADAPTER / 35e6 - 1:.1%}"  # +7.9%
    assert "roughly 35MB if stored in FP16" in adapter["what the paper counts, and its conditions"]


def test_every_number_in_the_comparison_matches_an_independent_count(at):
    # what each of the paper's rows must show, counted here without lora_core
    params = {
        "175,255.8M": [GPT3],
        "4.7M": [lora_formula(2, D3, 1, L3), lora_formula(1, D3, 2, L3)],
        "18M": [lora_formula(1, D3, 8, L3), lora_formula(2, D3, 4, L3), lora_formula(4, D3, 2, L3)],
        "37.7M": [lora_formula(2, D3, 8, L3), lora_formula(4, D3, 4, L3), lora_formula(4, D3, 2, L3)],
        "0.3M": [lora_formula(2, 768, 8, 12)], "0.8M": [lora_formula(2, 1024, 8, 24)],
        "0.35M": [lora_formula(2, 1024, 4, 24)], "0.77M": [lora_formula(2, 1280, 4, 36)],
    }
    for row in paper_tables(at)[0].value.to_dict("records"):
        assert leading_number(row["this app, same conditions"]) in params[row["the paper"]], row
    model, adapter = 2 * GPT3, 2 * ADAPTER  # fp16 files, 2 bytes a number
    files = {"350GB": human_bytes(model), "roughly 35MB": human_bytes(adapter),
             "roughly 10,000×": f"{model / adapter:,.0f}×", "≈ 354GB": human_bytes(model + 100 * adapter),
             "≈ 35TB": human_bytes(100 * model)}
    for row in paper_tables(at)[1].value.to_dict("records"):
        assert row["this app, same conditions"].startswith(files[row["the paper"]]), row
    assert files["roughly 10,000×"] == "9,251×" and files["≈ 354GB"] == "353 GB"
    speed = next(r for r in paper_tables(at)[2].value.to_dict("records") if r["the paper"] == "25% speedup")
    assert speed["this app, same conditions"] == f"{1 - 32.5 / 43.1:.1%} less time per token"
    assert speed["agrees"] == "✓ yes"


def test_paper_figures_name_real_models_targets_and_ranks():
    assert len(PAPER) == len(PAPER_FIGURES)  # every key once
    for fig in PAPER_FIGURES:
        assert fig.model in MODELS and fig.group in text.scale.PAPER_GROUPS
        assert fig.tolerance < fig.paper / 5  # a tolerance this tight still tells 4.7M from 37.7M
        for targets, r in fig.configs:
            assert targets and set(targets) <= set(TARGETS) and r in R_CHOICES


@pytest.mark.parametrize("computed,roughly,verdict", [
    (37.74e6, False, "yes"), (37.76e6, False, "no"),       # 37.7M printed: half a unit of its last digit
    (37.7e6 * 1.08, True, "roughly"), (37.7e6 * 1.11, True, "no"), (37.7e6 * 1.08, False, "no"),
])
def test_a_verdict_allows_the_printed_digits_and_roughly_only_where_the_paper_says_it(computed, roughly, verdict):
    fig = PaperFigure("x", "params", "Table 4", "GPT-3 175B", "37.7M", 37.7e6, 0.05e6, "params", "gpt3-175b",
                      roughly=roughly)
    check = PaperCheck(fig, computed)
    assert check.verdict == verdict
    assert verdict_text(check) == {"yes": "✓ yes", "roughly": "≈ roughly", "no": "✗ no"}[verdict] + (
        "" if verdict == "yes" else f", {computed / 37.7e6 - 1:+.1%}".replace("-", "−"))


def test_no_raw_latex_outside_dollar_signs(at):
    for sentence in texts(at):
        bare = re.sub(r"\$[^$]*\$", "", sentence)
        assert not re.search(r"\\(times|frac|cdot|approx)|\^\{|_\{", bare), sentence


def test_the_rank_help_covers_the_papers_ranks(at):
    help_text = at.select_slider(key="scale_r").help
    assert "1,024" in help_text and "Table 18" in help_text and "r = 1 to 64 (Table 15)" in help_text


def test_model_targets_and_rank_reach_the_counts(at):
    at.selectbox(key="model").set_value("roberta-base").run()
    at.select_slider(key="scale_r").set_value(8).run()
    assert metrics(at)["Trainable parameters"] == "294,912"
    before = memory_totals(at)
    at.pills(key="targets").set_value(["q", "k", "v", "o", "ffn"]).run()
    assert not at.exception
    expected = 12 * 8 * (4 * (768 + 768) + 2 * (768 + 3072))
    assert metrics(at)["Trainable parameters"] == f"{expected:,}"
    assert memory_totals(at)[0] > before[0] and memory_totals(at)[1] == pytest.approx(before[1])
    modules = at.dataframe[0].value["module"].tolist()
    assert modules == ["q", "k", "v", "o", "ffn.fc_in", "ffn.fc_out"]
    assert at.query_params["targets"] in ("q,k,v,o,ffn", ["q,k,v,o,ffn"])


def test_llama3_counts_its_grouped_query_k_and_v(at):
    at.selectbox(key="model").set_value("llama-3-8b").run()
    at.pills(key="targets").set_value(["k"]).run()
    row = at.dataframe[0].value.iloc[0]
    assert row["d_in × d_out"] == "4,096 × 1,024" and row["copies"] == 32
    assert metrics(at)["Trainable parameters"] == f"{32 * 4 * (4096 + 1024):,}"


def test_gpt2_explains_its_fused_qkv_and_no_targets_warn(at):
    at.selectbox(key="model").set_value("gpt2").run()
    at.pills(key="targets").set_value(["q"]).run()
    assert any("c_attn" in c.value for c in at.caption)
    assert metrics(at)["Trainable parameters"] == f"{12 * 4 * (768 + 3 * 768):,}"
    at.pills(key="targets").set_value([]).run()
    assert not at.exception
    assert metrics(at)["Trainable parameters"] == "0"
    assert any("No matrix is adapted" in w.value for w in at.warning)


def test_the_benchmark_runs_only_on_the_button(at):
    assert "bench_result" not in at.session_state and "Measured on this machine" not in figures(at)
    at.select_slider(key="bench_d").set_value(256).run()
    at.select_slider(key="bench_k").set_value(512).run()
    at.select_slider(key="bench_repeats").set_value(3).run()
    assert "bench_result" not in at.session_state  # moving the sizes measures nothing
    at.button(key="bench_go").click().run()
    assert not at.exception
    spec = figures(at)["Measured on this machine"]
    boxes = [t for t in spec["data"] if t["type"] == "box"]
    assert [len(decode(b["x"])) for b in boxes] == [3, 3] and all(np.all(decode(b["x"]) > 0) for b in boxes)
    claims = at.dataframe[1].value.set_index("the blog says")
    # gradients + exp_avg + exp_avg_sq in fp32: 12 bytes per trained number
    assert claims.loc["Memory usage: low", "full fine-tuning"].startswith("1.57 MB")  # 12·256·512
    assert claims.loc["Memory usage: low", "LoRA"] == "73.7 kB"                       # 12·8·(256 + 512)
    assert claims.loc["Memory usage: low", "measured"] == "21× less"
    assert claims.loc["Training speed: faster", "measured"].endswith("× faster")
    caveat = next(flat(c.value) for c in at.caption if "tokens/s per V100" in flat(c.value))
    assert "25% speedup" in caveat and "43.1 tokens/s per V100 GPU with LoRA against 32.5" in caveat  # footnote 5
    at.select_slider(key="bench_d").set_value(512).run()  # the old result stays, marked as stale
    assert any("have changed since" in m.value for m in at.markdown)


def test_bad_url_values_get_notices(app_test):
    app_test.query_params.update({"model": "gpt5", "targets": "q,mlp", "scale_r": "0"})
    at = app_test.switch_page(PAGE).run()
    assert not at.exception
    warnings = " ".join(w.value for w in at.warning)
    assert "model = `gpt5`" in warnings and "`mlp` is not a target" in warnings and "scale_r = `0`" in warnings
    assert at.selectbox(key="model").value == "gpt3-175b" and at.pills(key="targets").value == ["q"]
    assert metrics(at)["Trainable parameters"] == "2,359,296"  # GPT-3, r = 1 on q alone


# --- which GPU -------------------------------------------------------------------------------

def test_which_gpu_marks_each_card_from_the_cores_estimate_and_answers_the_blogs_row(at):
    from lora_core.gpu import CARDS, Workload, gigabytes, gpu_estimate
    assert not at.exception
    cards = next(t.value for t in at.table if "full fine-tuning" in t.value.columns)
    est = gpu_estimate("gpt3-175b", ("q", "v"), 4, Workload(512, 1, True), double_quant=True)
    for card in CARDS:
        for method, column in (("full", "full fine-tuning"), ("lora", "LoRA, 16-bit base"), ("qlora", "QLoRA, NF4 base")):
            room = card.memory - est.methods[method].total
            cell = cards.loc[card.name, column]
            assert cell.startswith("✓ fits") if room >= 0 else cell == f"✗ needs {gigabytes(-room):,.1f} GB more"
    said = " ".join(texts(at))
    assert "On a T4 16 GB, plain LoRA fits up to **Mistral-7B** and QLoRA up to **Llama-2-13B**" in said
    assert "full fine-tuning **785.0 GB** (more than 780: ✓), QLoRA **45.6 GB** (under 48: ✓)" in said
    bars = figures(at)["One training step of GPT-3 175B"]["data"][0]
    np.testing.assert_allclose(decode(bars["x"]), [est.methods[m].total / 1e9 for m in ("full", "lora", "qlora")])


def test_the_workload_controls_reach_the_estimate_and_the_url(at):
    from lora_core.gpu import Workload, gpu_estimate
    at.select_slider(key="gpu_seq").set_value(4096).run()
    at.select_slider(key="gpu_batch").set_value(8).run()
    at.toggle(key="gpu_ckpt").set_value(False).run()
    at.toggle(key="gpu_dq").set_value(False).run()
    assert not at.exception
    est = gpu_estimate("gpt3-175b", ("q", "v"), 4, Workload(4096, 8, False), double_quant=False)
    bars = figures(at)["One training step of GPT-3 175B"]["data"][0]
    np.testing.assert_allclose(decode(bars["x"]), [est.methods[m].total / 1e9 for m in ("full", "lora", "qlora")])
    q = at.query_params
    assert (q["gpu_seq"], q["gpu_batch"], q["gpu_ckpt"], q["gpu_dq"]) == ("4096", "8", "0", "0")


@pytest.mark.parametrize("key, value, words", [("gpu_seq", "3000", "gpu_seq = `3000` is not an offered length"),
                                               ("gpu_batch", "x", "gpu_batch = `x` is not a whole number"),
                                               ("gpu_ckpt", "2", "gpu_ckpt = `2` is not 0 or 1")])
def test_a_bad_workload_in_the_link_gets_a_notice(app_test, key, value, words):
    app_test.run()
    app_test.query_params[key] = value
    at = app_test.switch_page(PAGE).run()
    assert not at.exception
    assert words in " ".join(w.value for w in at.warning)
