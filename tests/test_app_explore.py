"""AppTest of the Explore page: what the page computes and shows, driven through its widgets."""
import numpy as np
import pytest
from test_lora import Q_BASE, Q_LORA

from helpers import all_figures, as_read, figures, heatmap_z, open_expander, open_view

Q_TITLE, BASE_TITLE = "Q = X·(W_Q + ΔW_Q) (3×3)", "Q = X·W_Q (3×3)"


@pytest.fixture
def at(app_test):
    return app_test


def test_opens_on_the_seed_example_with_its_numbers(at):
    at.run()
    assert not at.exception
    assert set(figures(at)) == {"X (3×5)", "W_Q (5×3)", "A_Q (5×2)", "B_Q (2×3)"}  # only the open part draws
    figs = all_figures(at, "explore")
    np.testing.assert_allclose(heatmap_z(figs[Q_TITLE]), Q_LORA, atol=1e-12)
    np.testing.assert_allclose(heatmap_z(figs[BASE_TITLE]), Q_BASE, atol=1e-12)
    assert {"X (3×5)", "W_Q (5×3)", "A_Q (5×2)", "B_Q (2×3)", "ΔW_Q = s·A_Q·B_Q (5×3)"} <= set(figs)
    assert "frozen" in figs["W_Q (5×3)"]["layout"]["title"]["subtitle"]["text"]
    assert at.query_params["r"] == ["2"] or at.query_params["r"] == "2"
    assert at.query_params["view"] in (["matrices"], "matrices")  # the open part is in the link
    open_view(at, "explore", "count")
    assert at.query_params["view"] in (["count"], "count")
    assert any("16 numbers, where full fine-tuning trains 15" in i.value for i in at.info)


def test_raising_r_keeps_the_seed_numbers_and_changes_q(at):
    at.run()
    at.slider(key="r").set_value(3).run()
    assert not at.exception
    figs = all_figures(at, "explore")
    A = heatmap_z(figs["A_Q (5×3)"])
    np.testing.assert_array_equal(A[:, :2], [[0.1, 0.0], [0.2, 0.1], [0.1, 0.0], [0.0, 0.2], [0.1, 0.1]])
    q = heatmap_z(figs[Q_TITLE])
    assert not np.allclose(q, Q_LORA)
    # α stays 2, so s = 2/3 now: check Q against numpy on the displayed matrices
    X, W, B = heatmap_z(figs["X (3×5)"]), heatmap_z(figs["W_Q (5×3)"]), heatmap_z(figs["B_Q (3×3)"])
    np.testing.assert_allclose(q, X @ (W + 2 / 3 * A @ B), atol=1e-12)


def test_dimensions_and_alpha_reach_the_figures(at):
    at.run()
    at.select_slider(key="d").set_value(8).run()
    at.slider(key="n").set_value(4).run()
    at.slider(key="alpha").set_value(4.0).run()
    assert not at.exception
    figs = all_figures(at, "explore")
    assert "X (4×8)" in figs and "Q = X·(W_Q + ΔW_Q) (4×3)" in figs
    np.testing.assert_array_equal(heatmap_z(figs["X (4×8)"])[:3, :5], [[0.1, 0.3, 0.5, 0.2, 0.0],
                                                                     [0.6, 0.7, 0.2, 0.1, 0.3],
                                                                     [0.4, 0.2, 0.6, 0.5, 0.1]])


def test_peft_preset_starts_at_the_base_model(at):
    at.run()
    at.selectbox(key="preset").set_value("peft").run()
    figs = figures(open_view(at, "explore", "q"))
    np.testing.assert_array_equal(heatmap_z(figs[Q_TITLE]), heatmap_z(figs[BASE_TITLE]))
    assert np.all(heatmap_z(figs["ΔQ = difference (3×3)"]) == 0)


def test_bad_url_values_are_clamped_with_a_notice(at):
    at.query_params["r"] = "999"
    at.query_params["d"] = "abc"
    at.query_params["alpha"] = "nan"
    at.run()
    assert not at.exception
    warnings = " ".join(w.value for w in at.warning)
    assert "r = `999`" in warnings and "d = `abc`" in warnings and "alpha = `nan`" in warnings
    assert at.slider(key="r").value == 3 and at.select_slider(key="d").value == 5
    assert "A_Q (5×3)" in figures(at)


def test_url_values_open_the_same_view(at):
    for key, value in {"preset": "random", "seed": "9", "n": "2", "d": "4", "k": "4", "r": "1", "alpha": "3"}.items():
        at.query_params[key] = value
    at.run()
    assert not at.warning and not at.exception
    assert "A_Q (4×1)" in figures(at) and at.number_input(key="seed").value == 9


def test_a_good_edit_changes_every_figure_and_a_bad_one_is_refused(at):
    at.run()
    open_expander(at, "explore_edit")  # an edit comes from a table that was drawn
    at.session_state["edit_W_0"] = {"edited_rows": {0: {"1": 1.0}}, "added_rows": [], "deleted_rows": []}
    at.run()
    figs = all_figures(at, "explore")
    open_view(at, "explore", "matrices")
    open_expander(at, "explore_edit")  # where the editors and their messages are
    assert heatmap_z(figs["W_Q (5×3)"])[0, 0] == 1.0
    assert heatmap_z(figs[BASE_TITLE])[0, 0] == pytest.approx(0.13 + 0.1 * 0.8)
    for bad, words in [("abc", "`abc` is not a number"), (float("nan"), "NaN"), ("inf", "`inf` is not a number"),
                       ("1e9", "larger than the limit"), (None, "is empty")]:
        key = f"edit_W_{at.session_state['editor_version']['W']}"  # each processed edit opens a fresh editor
        at.session_state[key] = {"edited_rows": {2: {"3": bad}}, "added_rows": [], "deleted_rows": []}
        at.run()
        assert not at.exception
        errors = " ".join(e.value for e in at.error)
        assert "W_Q[3, 3]" in errors and words in errors
        assert heatmap_z(figures(at)["W_Q (5×3)"])[2, 2] == 0.4  # the last valid value is kept
    assert heatmap_z(figures(at)["W_Q (5×3)"])[0, 0] == 1.0  # the good edit survived the bad ones


def test_a_good_number_typed_after_a_refused_one_takes_the_refusal_away(at):
    """The refusal stays through reruns that are not the user acting, and goes when a good number is typed."""
    at.run()
    open_expander(at, "explore_edit")

    def type_in(text):
        key = f"edit_W_{at.session_state['editor_version'].get('W', 0)}"  # each processed edit opens a fresh editor
        at.session_state[key] = {"edited_rows": {1: {"1": text}}, "added_rows": [], "deleted_rows": []}
        at.run()

    type_in("1e3e3")
    assert [e.value for e in at.error if "W_Q[2, 1]" in e.value and "1e3e3" in e.value]
    at.run()  # a rerun nobody asked for (the size report, a reconnect)
    assert [e.value for e in at.error if "W_Q[2, 1]" in e.value]
    type_in("1e3")
    assert not at.error and not at.exception  # the edits were changed in place, so no act was seen: it stayed
    assert heatmap_z(figures(at)["W_Q (5×3)"])[1, 0] == 1000.0


def test_cell_breakdown_follows_the_chosen_cell(at):
    at.run()
    open_view(at, "explore", "cell")
    at.number_input(key="cell_i").set_value(2).run()
    at.number_input(key="cell_j").set_value(2).run()
    lines = [el.value.strip("$\n") for el in at.get("latex")]
    assert r"Q_{2,2} = 0.350 + 0.099 = 0.449" in lines


def test_large_matrices_drop_cell_text(at):
    at.run()
    at.select_slider(key="d").set_value(64).run()
    at.select_slider(key="k").set_value(48).run()
    assert not at.exception
    spec = figures(at)["W_Q (64×48)"]
    assert len(spec["data"]) == 1  # no trace of printed numbers: hover reads them


def test_figures_export_at_slide_size_in_the_chosen_format(at):
    import json
    at.run()
    config = json.loads(at.get("plotly_chart")[0].proto.config)
    opts = config["toImageButtonOptions"]
    assert opts["format"] == "png" and opts["width"] * opts["scale"] >= 3000 and opts["filename"] == "X_3_5"
    at.segmented_control(key="export").set_value("svg").run()
    assert json.loads(at.get("plotly_chart")[0].proto.config)["toImageButtonOptions"]["format"] == "svg"


def test_matrices_download_as_csv_and_the_view_as_a_link(at):
    at.run()
    assert not at.get("download_button")  # the editors run only when their expander is open
    open_expander(at, "explore_edit")
    buttons = {b.proto.label: b for b in at.get("download_button")}
    assert {"Download X as CSV", "Download W_Q as CSV", "Download A_Q as CSV", "Download B_Q as CSV"} <= set(buttons)
    codes = [c.value for c in at.sidebar.code]
    assert any("r=2" in c and "preset=seed" in c for c in codes)


def test_an_uploaded_peft_adapter_fills_a_and_b_and_a_bad_one_changes_nothing(at):
    import torch

    from lora_core import adapter_zip_bytes
    at.run()
    open_expander(at, "explore_adapter")
    g = torch.Generator().manual_seed(4)
    A, B = torch.randn(5, 3, generator=g, dtype=torch.float64), torch.randn(3, 3, generator=g, dtype=torch.float64)
    at.file_uploader(key="adapter_upload").set_value(
        ("mine.zip", adapter_zip_bytes(A, B, r=3, alpha=6.0, dtype=torch.float64), "application/zip")).run()
    assert not at.exception
    assert any("Loaded `mine.zip`" in s.value and "r = 3" in s.value for s in at.success)
    assert at.slider(key="r").value == 3 and at.slider(key="alpha").value == 6.0
    figs = all_figures(at, "explore")
    np.testing.assert_allclose(heatmap_z(figs["A_Q (5×3)"]), A.numpy(), atol=1e-12)
    X, W = heatmap_z(figs["X (3×5)"]), heatmap_z(figs["W_Q (5×3)"])
    np.testing.assert_allclose(heatmap_z(figs[Q_TITLE]), X @ (W + 2.0 * A.numpy() @ B.numpy()), atol=1e-10)

    for name, data, words in [("junk.zip", b"not a zip at all", "not a zip"),
                              ("wide.zip", adapter_zip_bytes(torch.zeros(4, 2), torch.zeros(2, 3), r=2, alpha=2.0), "lora_A")]:
        at.file_uploader(key="adapter_upload").set_value((name, data, "application/zip")).run()
        assert not at.exception
        errors = as_read(" ".join(e.value for e in at.error))
        assert f"`{name}` was not loaded" in errors and words in errors and "Nothing was changed" in errors
        np.testing.assert_allclose(heatmap_z(figures(open_view(at, "explore", "matrices"))["A_Q (5×3)"]), A.numpy(),
                                   atol=1e-12)


def test_a_part_opens_from_the_url(at):
    at.query_params["view"] = "q"
    at.run()
    assert not at.exception and not at.warning
    assert set(figures(at)) == {BASE_TITLE, Q_TITLE, "ΔQ = difference (3×3)"}
    assert any("0.161" in el.value for el in at.get("latex"))  # the forward equation, with its numbers


def test_an_unknown_part_gets_a_notice_and_the_first_part(at):
    at.query_params["view"] = "nope"
    at.run()
    assert not at.exception
    assert "view = `nope` is not a part of this page" in " ".join(w.value for w in at.warning)
    assert set(figures(at)) == {"X (3×5)", "W_Q (5×3)", "A_Q (5×2)", "B_Q (2×3)"}


def test_moving_r_keeps_the_colour_range_so_the_frozen_figures_stay_as_they_are(at):
    """The shared ranges cover every r: W_Q and Q without LoRA do not change (so the browser keeps them)."""
    from lora_core import build_example, lora_forward, lora_scaling
    at.run()
    specs = {}
    for r in (2, 3, 1):
        at.slider(key="r").set_value(r).run()
        specs[r] = {**figures(open_view(at, "explore", "q")), **figures(open_view(at, "explore", "update"))}
    for title in (BASE_TITLE, "W_Q (5×3)"):
        assert specs[1][title] == specs[2][title] == specs[3][title]
    z_q = specs[2][BASE_TITLE]["data"][0]["zmax"]
    assert specs[3][Q_TITLE]["data"][0]["zmax"] == z_q
    biggest = 0.0
    for r in (1, 2, 3):  # the range is the largest |value| of Q, Q with LoRA and ΔQ over every r
        ex = build_example("seed", 0, 3, 5, 3, r)
        fwd = lora_forward(ex.X, ex.W, ex.A, ex.B, scaling=lora_scaling(2.0, r))
        biggest = max(biggest, *(float(t.abs().max()) for t in (fwd.base, fwd.q, fwd.delta)))
    assert z_q == pytest.approx(biggest, rel=1e-12)
