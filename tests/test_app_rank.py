"""AppTest of the Rank page: the spectrum of ΔW, Eckart–Young on the shown ΔW*, and the parameter count."""
import numpy as np
import pytest

from helpers import all_figures, decode, figures, heatmap_z, open_view

PAGE = "pages/rank.py"
def editor_key(at) -> str:
    """The ΔW* table's key now (each processed edit opens a fresh table, as on Explore)."""
    return f"edit_dW_{at.session_state['editor_version'].get('dW', 0)}"


@pytest.fixture
def at(app_test):
    app_test.run()
    return app_test.switch_page(PAGE).run()


def bars(at, title: str) -> list[dict]:
    return [t for t in all_figures(at, "rank")[title]["data"] if t["type"] == "bar"]


def shown_sigma(at, title: str) -> np.ndarray:
    """The true singular values, as the bars' hover carries them (zeros are drawn at the axis floor)."""
    return np.concatenate([decode(t["customdata"]) for t in bars(at, title)])


def test_delta_w_has_at_most_r_non_zero_singular_values(at):
    assert not at.exception
    delta = heatmap_z(all_figures(at, "rank")["ΔW = s·A·B (5×3)"])
    kept, dropped = bars(at, "Singular values of ΔW")
    assert decode(kept["x"]).tolist() == [1, 2] and decode(dropped["x"]).tolist() == [3]
    sigma = shown_sigma(at, "Singular values of ΔW")
    np.testing.assert_allclose(sigma[:2], np.linalg.svd(delta, compute_uv=False)[:2], rtol=1e-10)
    assert sigma[2] < 1e-15 * sigma[0]  # shown on the chart, not only stated
    assert any("**rank 2**" in m.value for m in at.markdown)


def test_raising_r_lets_one_more_direction_through(at):
    at.slider(key="r").set_value(3).run()
    assert not at.exception
    (kept,) = bars(at, "Singular values of ΔW")
    assert decode(kept["x"]).tolist() == [1, 2, 3]
    assert shown_sigma(at, "Singular values of ΔW")[2] > 1e-6
    assert any("**rank 3**" in m.value for m in at.markdown)


def test_best_rank_r_is_the_truncated_svd_of_the_shown_target(at):
    figs = all_figures(at, "rank")
    target = heatmap_z(figs["ΔW* (the update wanted) (5×3)"])
    U, S, Vt = np.linalg.svd(target, full_matrices=False)
    np.testing.assert_allclose(S, [1, 1 / 2, 1 / 3], rtol=1e-12)  # seeded full rank, σᵢ = 1/i
    best = (U[:, :2] * S[:2]) @ Vt[:2]
    np.testing.assert_allclose(heatmap_z(figs["best rank-2 approximation (5×3)"]), best, atol=1e-12)
    np.testing.assert_allclose(heatmap_z(figs["what rank r misses (5×3)"]), target - best, atol=1e-12)
    error = np.linalg.norm(target - best) / np.linalg.norm(target)
    assert error == pytest.approx(np.sqrt(S[2] ** 2 / (S ** 2).sum()))
    curve = figs["Relative error of the best rank-r approximation"]["data"]
    np.testing.assert_allclose(decode(curve[0]["y"])[1], 100 * error)
    assert decode(curve[0]["y"])[-1] == pytest.approx(0, abs=1e-12)  # full rank reproduces it exactly
    open_view(at, "rank", "copy")
    assert any(f"{error:.4f}" in el.value for el in at.get("latex"))


def test_a_flat_spectrum_is_harder_to_approximate(at):
    before = decode(all_figures(at, "rank")["Relative error of the best rank-r approximation"]["data"][0]["y"])
    at.slider(key="decay").set_value(0.0).run()
    assert not at.exception
    np.testing.assert_allclose(shown_sigma(at, "Singular values of ΔW*"), 1.0)
    after = decode(all_figures(at, "rank")["Relative error of the best rank-r approximation"]["data"][0]["y"])
    assert after[0] > before[0] and after[1] == pytest.approx(100 * np.sqrt(1 / 3))
    assert at.query_params["decay"] in ("0", ["0"])


def test_the_parameter_count_crosses_full_fine_tuning_at_break_even(at):
    spec = all_figures(at, "rank")["Numbers to train, as r grows"]
    full, lora, mark = spec["data"]
    assert decode(full["y"]).tolist() == [15, 15, 15] and decode(lora["y"]).tolist() == [8, 16, 24]
    assert mark["y"] == [16]
    assert any("1.875" in a["text"] for a in spec["layout"]["annotations"])
    at.select_slider(key="d").set_value(64).run()
    at.select_slider(key="k").set_value(64).run()
    spec = all_figures(at, "rank")["Numbers to train, as r grows"]
    assert decode(spec["data"][0]["y"])[0] == 64 * 64
    assert any("break-even r = d·k/(d + k) = 32" in a["text"] for a in spec["layout"]["annotations"])


def test_an_edited_target_cell_changes_the_approximation_and_a_bad_one_is_refused(at):
    seeded = heatmap_z(all_figures(at, "rank")["ΔW* (the update wanted) (5×3)"])
    at.session_state[editor_key(at)] = {"edited_rows": {0: {"1": "2.5"}}, "added_rows": [], "deleted_rows": []}
    at.run()
    assert not at.exception and not at.error
    target = heatmap_z(all_figures(at, "rank")["ΔW* (the update wanted) (5×3)"])
    assert target[0, 0] == 2.5 and np.array_equal(target[1:], seeded[1:])
    S = np.linalg.svd(target, compute_uv=False)
    np.testing.assert_allclose(shown_sigma(at, "Singular values of ΔW*"), S, rtol=1e-10)
    at.session_state[editor_key(at)] = {"edited_rows": {2: {"3": float("inf")}}, "added_rows": [], "deleted_rows": []}
    at.run()
    assert not at.exception
    # the cell and why (parse_cell's words: an infinite value is beyond its ±1e6 limit)
    assert any("ΔW*[3, 3]" in e.value and ("infinite" in e.value or "limit" in e.value) for e in at.error)
    assert heatmap_z(all_figures(at, "rank")["ΔW* (the update wanted) (5×3)"])[2, 2] == seeded[2, 2]
    # typed with an exponent, as on Explore (Streamlit's number editor read "1e-3" as 13)
    at.session_state[editor_key(at)] = {"edited_rows": {1: {"2": "1e-3"}}, "added_rows": [], "deleted_rows": []}
    at.run()
    assert not at.exception and not at.error
    assert heatmap_z(all_figures(at, "rank")["ΔW* (the update wanted) (5×3)"])[1, 1] == 1e-3
    # a forged edit naming a column ΔW* does not have writes nothing
    at.session_state[editor_key(at)] = {"edited_rows": {-1: {"1": "7"}}, "added_rows": [], "deleted_rows": []}
    at.run()
    assert not at.exception and any("row `-1` is not a row 1…5" in e.value for e in at.error)
    assert heatmap_z(all_figures(at, "rank")["ΔW* (the update wanted) (5×3)"])[4, 0] == seeded[4, 0]


def test_a_zero_delta_w_is_said_to_have_rank_0(at):
    at.selectbox(key="preset").set_value("peft").run()
    spec = all_figures(at, "rank")["Singular values of ΔW"]
    assert "every singular value is exactly 0" in spec["layout"]["annotations"][0]["text"]
    assert any("rank is 0" in m.value for m in at.markdown)


def test_bad_url_values_get_notices(app_test):
    app_test.query_params["decay"] = "lots"
    at = app_test.switch_page(PAGE).run()
    assert not at.exception
    assert any("decay = `lots`" in w.value for w in at.warning)
    assert at.slider(key="decay").value == 1.0


def test_moving_r_keeps_the_targets_heatmap_and_its_colour_range(at):
    """One colour range for every r, so ΔW*'s heatmap is the same figure at every r (the browser keeps it)."""
    specs = {}
    for r in (2, 3, 1):
        at.slider(key="r").set_value(r).run()
        specs[r] = figures(open_view(at, "rank", "copy"))
    title = "ΔW* (the update wanted) (5×3)"
    assert specs[1][title] == specs[2][title] == specs[3][title]
    target = heatmap_z(specs[2][title])
    U, S, Vt = np.linalg.svd(target, full_matrices=False)
    biggest = np.abs(target).max()
    for r in (1, 2, 3):
        best = (U[:, :r] * S[:r]) @ Vt[:r]
        biggest = max(biggest, np.abs(best).max(), np.abs(target - best).max())
    assert specs[2][title]["data"][0]["zmax"] == pytest.approx(biggest, rel=1e-9)


def _count_svds(monkeypatch):
    import torch
    calls = []
    for name in ("svd", "svdvals"):
        real = getattr(torch.linalg, name)
        monkeypatch.setattr(torch.linalg, name, lambda *a, _real=real, _name=name, **k: calls.append(_name) or _real(*a, **k))
    return calls


def test_each_part_computes_only_what_it_shows(app_test, monkeypatch):
    """The count needs no SVD; moving r does not take ΔW*'s SVD again; the spectrum takes one of ΔW."""
    import streamlit as st

    from helpers import open_view
    st.cache_data.clear()
    calls = _count_svds(monkeypatch)
    app_test.run()
    at = app_test.switch_page(PAGE).run()  # the first part, the spectrum of ΔW
    assert not at.exception and calls == ["svdvals"]
    calls.clear()
    open_view(at, "rank", "cost")
    at.slider(key="r").set_value(1).run()
    assert not at.exception and calls == []
    open_view(at, "rank", "copy")
    assert sorted(calls) == ["svd", "svdvals"]  # ΔW*'s singular values and its SVD, once for every r
    calls.clear()
    at.slider(key="r").set_value(3).run()
    open_view(at, "rank", "error")
    assert not at.exception and calls == []


def test_the_parts_show_the_core_numbers_exactly(app_test):
    """Taking ΔW*'s SVD once changes no number: the page's copy and error are best_rank_r's, bit for bit."""
    import torch

    from lora_app.compute.rank import delta_spectrum, target_copy
    from lora_app.config import ExploreConfig
    from lora_app.config.rank import RankConfig
    from lora_core.rank import best_rank_r, default_tolerance, seeded_full_rank_update, singular_values
    for r in (1, 5, 12):
        ex = ExploreConfig(preset="random", d=12, k=40, n=4, r=r)
        got = target_copy.__wrapped__(RankConfig(ex, 0.5, ()))
        want = best_rank_r(seeded_full_rank_update(12, 40, 0, decay=0.5), r)
        assert np.array_equal(got.approx, want.approx.numpy()) and got.rel_error == want.rel_error
        spec = delta_spectrum.__wrapped__(ex)
        delta = torch.from_numpy(spec.delta_W)
        assert np.array_equal(spec.delta_sigma, singular_values(delta).numpy()) and spec.delta_tol == default_tolerance(delta)
