"""AppTest of the Scale page: counts on real models, the paper's figures, and the live benchmark."""
import numpy as np
import pytest

from helpers import decode, figures

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


def test_opens_on_gpt3_at_r_4_on_q_and_v_the_papers_35_mb_adapter(at):
    assert not at.exception
    m = metrics(at)
    assert m["Trainable parameters"] == "18,874,368"
    assert m["Adapter file, fp16"] == "37.7 MB" and m["Whole model file, fp16"] == "349 GB"
    assert m["Training memory, LoRA"] == "350 GB"
    np.testing.assert_allclose(memory_totals(at), [349.5, 2793.7], rtol=1e-3)
    assert {"model": "gpt3-175b", "targets": "q,v", "scale_r": "4"}.items() <= {
        k: v if isinstance(v, str) else v[0] for k, v in at.query_params.items()}.items()


def test_the_papers_figures_appear_and_agree(at):
    table = at.dataframe[1].value
    computed = dict(zip(table["the paper's figure"], table["computed here"]))
    assert computed["GPT-3 175B, r = 1 on q and v"].startswith("4,718,592")
    assert computed["GPT-3 175B, r = 8 on q and v"].startswith("37,748,736")
    assert computed["GPT-3 175B, r = 4 on q, k, v and o"].startswith("37,748,736")
    assert computed["RoBERTa-base, r = 8 on q and v"].startswith("294,912")
    assert computed["RoBERTa-large, r = 8 on q and v"].startswith("786,432")
    assert computed["GPT-3 175B checkpoint, r = 4 on q and v in fp16"] == "37.7 MB"
    assert computed["GPT-3 175B checkpoint, the whole model in fp16"] == "349 GB"
    assert set(table["agrees"]) == {"✓ yes"}
    assert any("1.2 TB" in m.value and "2.79 TB" in m.value for m in at.markdown)


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
    claims = at.dataframe[2].value.set_index("the blog says")
    # gradients + exp_avg + exp_avg_sq in fp32: 12 bytes per trained number
    assert claims.loc["Memory usage: low", "full fine-tuning"].startswith("1.57 MB")  # 12·256·512
    assert claims.loc["Memory usage: low", "LoRA"] == "73.7 kB"                       # 12·8·(256 + 512)
    assert claims.loc["Memory usage: low", "measured"] == "21× less"
    assert claims.loc["Training speed: faster", "measured"].endswith("× faster")
    at.select_slider(key="bench_d").set_value(512).run()  # the old result stays, marked as stale
    assert any("have changed since" in m.value for m in at.markdown)


def test_bad_url_values_get_notices(app_test):
    app_test.query_params.update({"model": "gpt5", "targets": "q,mlp", "scale_r": "0"})
    at = app_test.switch_page(PAGE).run()
    assert not at.exception
    warnings = " ".join(w.value for w in at.warning)
    assert "`model=gpt5`" in warnings and "mlp is not a target" in warnings and "`scale_r=0`" in warnings
    assert at.selectbox(key="model").value == "gpt3-175b" and at.pills(key="targets").value == ["q"]
    assert metrics(at)["Trainable parameters"] == "2,359,296"  # GPT-3, r = 1 on q alone
