"""AppTest of the Attention page: the attention it shows matches torch's SDPA, and the toggles reach the maps."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_lora import Q_LORA

from helpers import all_figures, figures, heatmap_z, open_view

PAGE = "pages/attention.py"


@pytest.fixture
def at(app_test):
    app_test.run()
    return app_test.switch_page(PAGE).run()


def fig(at, start: str) -> np.ndarray:
    """The matrix of the first figure whose title starts with ``start``."""
    figs = all_figures(at, "attention")
    matches = [title for title in figs if title.startswith(start)]
    assert matches, f"no figure titled {start!r} among {list(figs)}"
    return heatmap_z(figs[matches[0]])


def sdpa(Q, K, V, causal=False):
    t = lambda M: torch.from_numpy(M)[None, None]
    return F.scaled_dot_product_attention(t(Q), t(K), t(V), is_causal=causal)[0, 0].numpy()


def test_opens_on_the_blog_example_with_head_1_as_the_explore_pages_q(at):
    assert not at.exception
    np.testing.assert_allclose(fig(at, "Q_1 = X·(W_Q + s·A_Q·B_Q)"), Q_LORA, atol=1e-12)
    assert "K_1 = X·W_K (3×3)" in all_figures(at, "attention")  # no adapter on W_K by default
    weights = fig(at, "weights = softmax")
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    assert at.query_params["lora"] in ("q,v", ["q,v"])


def test_the_shown_attention_matches_torch_sdpa(at):
    Q, K, V = fig(at, "Q_1"), fig(at, "K_1"), fig(at, "V_1")
    np.testing.assert_allclose(fig(at, "head 1 = weights·V_1"), sdpa(Q, K, V), atol=1e-12)
    scores = Q @ K.T / np.sqrt(3)
    np.testing.assert_allclose(fig(at, "scores"), scores, atol=1e-12)
    np.testing.assert_allclose(fig(at, "weights = softmax"), np.exp(scores) / np.exp(scores).sum(1, keepdims=True),
                               atol=1e-12)
    open_view(at, "attention", "out_change")
    assert any("scaled_dot_product_attention" in c.value and "e-1" in c.value for c in at.caption)


def test_lora_on_w_k_moves_the_weights_and_none_leaves_them_alone(at):
    before = fig(at, "weights with LoRA")
    at.checkbox(key="lora_k").check().run()
    assert not at.exception
    after = fig(at, "weights with LoRA")
    assert not np.allclose(before, after)
    assert "K_1 = X·(W_K + s·A_K·B_K) (3×3)" in all_figures(at, "attention")
    for key in ("lora_q", "lora_k", "lora_v"):
        at.checkbox(key=key).uncheck().run()
    assert np.all(fig(at, "change in the weights") == 0)
    assert np.all(fig(at, "change in the output") == 0)
    assert at.query_params["lora"] in ("none", ["none"])


def test_lora_on_w_v_changes_the_output_but_not_the_weights(at):
    for key in ("lora_q",):
        at.checkbox(key=key).uncheck().run()
    assert np.all(fig(at, "change in the weights") == 0)  # only v is adapted now
    assert np.any(fig(at, "change in the output") != 0)


def test_the_table_counts_trainable_and_frozen_numbers(at):
    open_view(at, "attention", "count")
    table = at.dataframe[0].value.set_index("matrix")
    assert table.loc["W_Q", "trained by LoRA"] == 2 * (5 + 3)
    assert table.loc["W_K", "trained by LoRA"] == 0 and table.loc["W_K", "numbers in the matrix"] == 15
    assert table.loc["Token embedding", "numbers in the matrix"] == 50257 * 5
    assert table.loc["the layer, in all", "trained by LoRA"] == 32
    at.checkbox(key="lora_ffn").check().run()
    table = at.dataframe[0].value.set_index("matrix")
    assert table.loc["FFN W_1", "trained by LoRA"] == 2 * (5 + 20)
    assert table.loc["the layer, in all", "trained by LoRA"] == 32 + 2 * 2 * 25
    assert table.loc["Token embedding", "trained by LoRA"] == 0  # embeddings stay frozen


def test_two_heads_and_the_head_shown(at):
    at.segmented_control(key="heads").set_value(2).run()
    assert not at.exception
    np.testing.assert_allclose(fig(at, "Q_1"), Q_LORA, atol=1e-12)  # head 1 is still the Explore page's Q
    at.segmented_control(key="head").set_value(2).run()
    Q, K, V = fig(at, "Q_2"), fig(at, "K_2"), fig(at, "V_2")
    np.testing.assert_allclose(fig(at, "head 2 = weights·V_2"), sdpa(Q, K, V), atol=1e-12)
    np.testing.assert_allclose(fig(at, "weights with LoRA, head 2"), fig(at, "weights = softmax"))
    assert fig(at, "out = ").shape == (3, 5)
    assert fig(at, "W_O").shape == (6, 5)  # both heads' 3 columns each feed W_O


def test_the_causal_mask_hides_later_tokens(at):
    at.toggle(key="causal").set_value(True).run()
    weights = fig(at, "weights = softmax")
    assert np.all(np.triu(weights, 1) == 0) and weights[0, 0] == 1
    Q, K, V = fig(at, "Q_1"), fig(at, "K_1"), fig(at, "V_1")
    np.testing.assert_allclose(fig(at, "head 1 = weights·V_1"), sdpa(Q, K, V, causal=True), atol=1e-12)


def test_peft_preset_adapters_change_nothing_yet(at):
    at.selectbox(key="preset").set_value("peft").run()
    assert np.all(fig(at, "change in the weights") == 0) and np.all(fig(at, "change in the output") == 0)


def test_wide_k_limits_the_heads_with_a_note(at):
    at.segmented_control(key="heads").set_value(4).run()
    at.select_slider(key="k").set_value(512).run()
    assert not at.exception
    assert any("using 2" in i.value for i in at.info)
    assert "W_O (1024×5)" in all_figures(at, "attention")  # shown as block means, named at full size


def test_bad_url_values_get_notices(app_test):
    app_test.query_params.update({"lora": "q,embedding", "heads": "99", "causal": "maybe"})
    at = app_test.switch_page(PAGE).run()
    assert not at.exception
    warnings = " ".join(w.value for w in at.warning)
    assert "`embedding` is not a matrix" in warnings and "heads = `99`" in warnings and "causal = `maybe`" in warnings
    assert at.checkbox(key="lora_q").value and not at.checkbox(key="lora_v").value
    assert at.segmented_control(key="heads").value == 4


def test_moving_r_leaves_what_does_not_depend_on_r_as_it_is(at):
    """K (no adapter) and the output without LoRA keep their figure, colour range included, at every r."""
    specs = {}
    for r in (2, 3, 1):
        at.slider(key="r").set_value(r).run()
        specs[r] = {**figures(open_view(at, "attention", "qkv")), **figures(open_view(at, "attention", "out_change"))}
    for title in ("K_1 = X·W_K (3×3)", "output without LoRA (3×5)"):
        assert specs[1][title] == specs[2][title] == specs[3][title], title
    assert specs[1]["Q_1 = X·(W_Q + s·A_Q·B_Q) (3×3)"] != specs[2]["Q_1 = X·(W_Q + s·A_Q·B_Q) (3×3)"]
    for r in (1, 2, 3):  # the range covers what every r shows
        for title in ("Q_1 = X·(W_Q + s·A_Q·B_Q) (3×3)", "V_1 = X·(W_V + s·A_V·B_V) (3×3)"):
            z = heatmap_z(specs[r][title])
            assert np.abs(z).max() <= specs[r][title]["data"][0]["zmax"] + 1e-12
