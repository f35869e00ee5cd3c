"""AppTest of the Family page: every part on the seed's matrices shows the core's numbers, its controls reach the
runs and the URL, and a value that cannot be used gets a notice and keeps the last good one.

The core itself is checked against bitsandbytes and PEFT in test_nf4_bnb.py and test_family_peft.py; here the
page's figures and sentences are compared with the core's own results, computed independently of the page.
"""
import numpy as np
import pytest
import torch

from helpers import cell_texts, decode, figures, heatmap_z, open_view
from lora_core.dora import column_norms
from lora_core.family import VARIANTS, FamilySettings, family_run, train
from lora_core.lora import seed_example
from lora_core.nf4 import nf4_quantize
from lora_core.pissa import pissa_init
from lora_core.training import make_target

PAGE = "pages/family.py"


@pytest.fixture
def at(app_test):
    app_test.run()
    return app_test.switch_page(PAGE).run()


def view(at, slug: str):
    return open_view(at, "family", slug)


def md(at) -> str:
    return "\n".join(m.value for m in at.markdown)


def seed_task(r_star: int = 1):
    ex = seed_example()
    return ex, make_target(ex.X, ex.W, r_star=r_star, seed=0).T


def test_opens_on_qlora_and_its_codes_and_dequantized_w_are_the_cores_nf4(at):
    assert not at.exception
    figs = figures(at)
    ex = seed_example()
    q = nf4_quantize(ex.W)
    np.testing.assert_array_equal(heatmap_z(figs["W̃_Q = level × absmax (5×3)"]), q.dequantized.double().numpy())
    assert cell_texts(figs["4-bit code (5×3)"]) == [str(c) for c in q.codes.ravel().tolist()]
    np.testing.assert_array_equal(heatmap_z(figs["W_Q − W̃_Q (5×3)"]), (ex.W - q.dequantized.double()).numpy())
    text = md(at)
    assert "**4.5 bits a weight**" in text and "it would be 4.127" in text
    assert "15 weights make 1 block" in text
    levels = figs["The sixteen NF4 levels, by code"]
    counts = np.concatenate([decode(t["customdata"])[:, 1] for t in levels["data"]])
    assert counts.sum() == 15
    # Q over W̃ is X·(W̃ + s·A·B), the seed's A and B, s = 1
    expected = ex.X @ (q.dequantized.double() + ex.A @ ex.B)
    np.testing.assert_allclose(heatmap_z(figs["Q = X·(W̃_Q + s·A_Q·B_Q) (3×3)"]), expected.numpy(), rtol=0, atol=1e-15)


def test_double_quantization_changes_the_bits_not_the_values(at):
    before = heatmap_z(figures(at)["W̃_Q = level × absmax (5×3)"])
    at.checkbox(key="fam_dq").check().run()
    assert not at.exception
    assert "**4.127 bits a weight**" in md(at) and "it would be 4.5" in md(at)
    np.testing.assert_array_equal(heatmap_z(figures(at)["W̃_Q = level × absmax (5×3)"]), before)
    assert at.query_params["fam_dq"] == "1"


def test_dora_starts_as_lora_and_one_step_is_the_cores_step(at):
    view(at, "dora")
    assert not at.exception
    figs = figures(at)
    ex, T = seed_task()
    m = column_norms(ex.W, ex.A, ex.B, 1.0)
    np.testing.assert_allclose(heatmap_z(figs["m = ‖V‖ at the start (1×3)"])[0], m.numpy(), rtol=0, atol=1e-15)
    direction = heatmap_z(figs["direction V/‖V‖ (5×3)"])
    np.testing.assert_allclose(np.linalg.norm(direction, axis=0), 1.0, rtol=0, atol=1e-15)  # unit columns
    s = FamilySettings(r=2, alpha=2.0, lr=0.02, weight_decay=0.01)
    run = train("dora", ex.X, T, {"A": ex.A, "B": ex.B, "m": m}, {"W": ex.W}, s, steps=1)
    np.testing.assert_array_equal(heatmap_z(figs["m after (1×3)"])[0], run.params["m"].numpy())
    assert f"The loss went from {run.losses[0]:.4g} to {run.losses[1]:.4g}" in md(at)


def test_pissa_shows_ws_top_r_part_and_a_residual_that_adds_back_to_w(at):
    view(at, "pissa")
    figs = figures(at)
    ex = seed_example()
    init = pissa_init(ex.W, 2, 1.0)
    np.testing.assert_allclose(heatmap_z(figs["s·A_Q·B_Q (5×3)"]), (init.A @ init.B).numpy(), rtol=0, atol=1e-15)
    res = heatmap_z(figs["W_res (5×3)"])
    np.testing.assert_allclose(res + heatmap_z(figs["s·A_Q·B_Q (5×3)"]), ex.W.numpy(), rtol=0, atol=4 * 2**-52)
    sigma = np.linalg.svd(ex.W.numpy(), compute_uv=False)
    shown = np.concatenate([decode(t["customdata"]) for t in figs["Singular values of W_Q"]["data"] if t["type"] == "bar"])
    np.testing.assert_allclose(shown, sigma, rtol=1e-14)
    assert f"**{(sigma[:2] ** 2).sum() / (sigma ** 2).sum():.1%}** of W's energy" in md(at)


def test_the_comparison_is_six_core_runs_and_its_sentence_names_the_lowest(at):
    view(at, "compare")
    assert not at.exception
    fig = figures(at)["Loss before each step"]
    ex, T = seed_task()
    s = FamilySettings(r=2, alpha=2.0, lr=0.02, steps=300, weight_decay=0.01)
    finals = {}
    for trace, variant in zip(fig["data"], VARIANTS):
        run = family_run(variant, ex.X, ex.W, T, s)
        np.testing.assert_array_equal(decode(trace["y"]), np.array(run.losses))
        assert trace["name"].endswith(f"{run.trained:,} trained")
        finals[variant] = run.losses[-1]
    best = min(finals, key=finals.get)
    names = {"lora": "LoRA", "qlora": "QLoRA", "dora": "DoRA", "pissa": "PiSSA", "loraplus": "LoRA+", "vera": "VeRA"}
    assert f"**{names[best]}** reached the lowest loss here" in md(at)
    assert "one small task with one seed" in md(at)
    table = at.table[0].value
    assert table.loc["DoRA", "trained here"] == "19" and table.loc["VeRA", "trained here"] == "5"
    assert table.loc["QLoRA", "frozen base"] == "9.44 MB"  # 4096·4096 weights at 4.5 bits


def test_the_task_controls_reach_the_runs_and_the_url(at):
    view(at, "compare")
    at.slider(key="fam_steps").set_value(50).run()
    at.select_slider(key="fam_lr").set_value(0.05).run()
    at.slider(key="fam_rstar").set_value(2).run()
    assert not at.exception
    fig = figures(at)["Loss before each step"]
    assert all(len(decode(t["y"])) == 51 for t in fig["data"])
    ex, T = seed_task(r_star=2)
    run = family_run("lora", ex.X, ex.W, T, FamilySettings(r=2, alpha=2.0, lr=0.05, steps=50, weight_decay=0.01))
    np.testing.assert_array_equal(decode(fig["data"][0]["y"]), np.array(run.losses))
    q = at.query_params
    assert (q["fam_steps"], q["fam_lr"], q["fam_rstar"], q["view"]) == ("50", "0.05", "2", "compare")


def test_loraplus_gives_b_lambda_times_as_rate_and_the_rest_is_loras(at):
    view(at, "loraplus")
    at.select_slider(key="fam_ratio").set_value(4.0).run()
    assert not at.exception
    table = at.table[0].value
    assert table.loc["A_Q", "learning rate"] == "0.02" and table.loc["B_Q", "learning rate"] == "0.08"
    assert "LoRA+'s loss is" in md(at)


def test_vera_trains_r_plus_k_numbers_from_random_frozen_a_and_b(at):
    view(at, "vera")
    assert not at.exception
    figs = figures(at)
    # PEFT starts d at d_initial = 0.1 made in float32, whatever the model's dtype
    assert heatmap_z(figs["d at step 0 (1×2)"]).tolist() == [[float(torch.tensor(0.1, dtype=torch.float32))] * 2]
    assert heatmap_z(figs["b at step 0 (1×3)"]).tolist() == [[0.0, 0.0, 0.0]]
    assert "VeRA trains r + k = **5** numbers where LoRA trains r·(d + k) = **16**" in md(at)


@pytest.mark.parametrize("query, notice", [
    ({"fam_rstar": "9"}, "fam_rstar = `9` is outside 1…min(d, k) = 3; using fam_rstar=1."),
    ({"fam_lr": "0.03"}, "fam_lr = `0.03` is not one of the choices"),
    ({"fam_steps": "15"}, "fam_steps = `15` is not a multiple of 10 in 10…1000"),
    ({"fam_ratio": "abc"}, "fam_ratio = `abc` is not a finite number; using fam_ratio=16."),
    ({"fam_dq": "maybe"}, "fam_dq = `maybe` is not 0 or 1; using fam_dq=0."),
    ({"view": "lora-xs"}, "`lora-xs` is not a part of this page"),
])
def test_bad_url_values_get_a_notice_and_a_value_that_works(app_test, query, notice):
    app_test.run()
    for key, value in query.items():
        app_test.query_params[key] = value
    at = app_test.switch_page(PAGE).run()
    assert not at.exception
    said = " ".join(w.value for w in at.warning)
    assert notice in said, said


def test_a_smaller_d_refuses_r_star_above_it_and_keeps_the_last_good_value(at):
    view(at, "compare")
    at.slider(key="fam_rstar").set_value(3).run()
    at.slider(key="fam_rstar").set_value(2).run()
    at.select_slider(key="d").set_value(2).run()  # min(d, k) = 2: r* = 2 still fits
    assert not at.exception and at.session_state["fam_rstar"] == 2
    at.select_slider(key="k").set_value(1).run()  # now min(d, k) = 1; r must follow it down too
    assert not at.exception
    assert at.session_state["fam_rstar"] == 1
    assert any("fam_rstar = `2` is outside 1…min(d, k) = 1" in w.value for w in at.warning)


def test_every_part_opens_without_an_error_at_a_size_with_several_nf4_blocks(at):
    at.select_slider(key="d").set_value(24).run()
    at.select_slider(key="k").set_value(8).run()
    for slug in ("qlora", "dora", "pissa", "loraplus", "vera", "compare"):
        view(at, slug)
        assert not at.exception, slug
    view(at, "qlora")
    assert "192 weights make 3 blocks" in md(at)


def test_a_forged_value_that_reaches_the_session_gives_way_to_the_last_good_one(at):
    """The widget guard refuses a slider value outside the slider; were one to reach the session, the page's own
    check refuses it again and keeps the value before it (a moved value, such as steps off the grid, snaps)."""
    open_view(at, "family", "compare")
    at.slider(key="fam_rstar").set_value(2).run()
    at.session_state["fam_rstar"] = 9
    at.run()
    assert not at.exception
    assert at.session_state["fam_rstar"] == 2 and at.query_params["fam_rstar"] == "2"
    assert any("fam_rstar = `9` is outside 1…min(d, k) = 3; using fam_rstar=2." in w.value for w in at.warning)


def test_a_zero_column_has_no_direction_and_dora_says_so_instead_of_dividing_by_zero(app_test):
    """At d = 1 with B = 0, a column of V = W + s·A·B is zero when W's is (PEFT divides by its norm, 0, too)."""
    app_test.query_params.update({"preset": "peft", "d": "1", "k": "4", "r": "1", "n": "2", "view": "dora"})
    at = app_test.switch_page(PAGE).run()
    assert not at.exception
    V = heatmap_z(figures(at)["V = W_Q + s·A_Q·B_Q (1×4)"])
    zero = [j for j in range(4) if V[0, j] == 0]
    assert zero, "the example must hold a zero column for this test to mean anything"
    said = " ".join(w.value for w in at.warning)
    assert f"Column {', '.join(str(j + 1) for j in zero)} of V = W_Q + s·A_Q·B_Q is all zeros" in said
    assert "direction after (1×4)" not in figures(at)


def test_a_dora_adapter_loaded_on_explore_gives_the_family_pages_dora_its_m(app_test):
    """PEFT's own DoRA file: Explore takes its A and B and says where m went; the Family page's DoRA part starts
    from that m, and its step is the core's step from it."""
    from test_family_peft import peft_dora_zip

    from helpers import open_expander
    at = app_test.run()
    open_expander(at, "explore_adapter")
    data, layer = peft_dora_zip(5, 3, 2, 4.0, seed=21)
    at.file_uploader(key="adapter_upload").set_value(("dora.zip", data, "application/zip")).run()
    assert not at.exception
    assert any("It is a DoRA adapter: its magnitude m (3 numbers)" in s.value for s in at.success)
    at.switch_page(PAGE).run()
    open_view(at, "family", "dora")
    assert not at.exception
    m = layer.lora_magnitude_vector["default"].weight.detach().double()
    np.testing.assert_array_equal(heatmap_z(figures(at)["m from the uploaded adapter (1×3)"])[0], m.numpy())
    assert any("DoRA adapter loaded on Explore" in c.value for c in at.caption)
    ex, T = seed_task()
    A = layer.lora_A["default"].weight.detach().double().T
    B = layer.lora_B["default"].weight.detach().double().T
    s = FamilySettings(r=2, alpha=4.0, lr=0.02, weight_decay=0.01)
    run = train("dora", ex.X, T, {"A": A, "B": B, "m": m}, {"W": ex.W}, s, steps=1)
    np.testing.assert_array_equal(heatmap_z(figures(at)["m after (1×3)"])[0], run.params["m"].numpy())
