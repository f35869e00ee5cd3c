"""AppTest of the Training page: stepping, scrubbing without recomputing, hyperparameters, bad input."""
import numpy as np
import pytest
import torch

import lora_app.compute.training as compute_training
from helpers import all_figures, figures, heatmap_z, open_expander, open_view
from lora_core import make_target, seed_example
from test_lora import Q_LORA


@pytest.fixture
def at(app_test, monkeypatch):
    import streamlit as st
    st.cache_resource.clear()
    calls = []
    real = compute_training.adamw_trace
    monkeypatch.setattr(compute_training, "adamw_trace", lambda *a, **k: calls.append(1) or real(*a, **k))
    app_test.trace_calls = calls
    app_test.run()
    app_test.switch_page("pages/training.py").run()
    assert not app_test.exception
    return app_test


def stage_title(at) -> str:
    return next(h.value for h in at.subheader if h.value.startswith("Step "))


def test_opens_at_step_1_forward_with_the_seed_numbers(at):
    figs = all_figures(at, "training")
    np.testing.assert_allclose(heatmap_z(figs["Q (3×3)"]), Q_LORA, atol=1e-12)
    X, W, _, _ = seed_example()
    np.testing.assert_allclose(heatmap_z(figs["target T (3×3)"]), make_target(X, W, 1, seed=0).T.numpy(), atol=1e-12)
    assert stage_title(at) == "Step 1 of 300 · ① Forward pass"
    assert "Loss L before each update" in figs
    assert "A_Q (5×2)" not in figures(at)  # A, B and W sit in an expander that runs only when opened
    figs = figures(open_expander(at, "forward_parts"))
    np.testing.assert_array_equal(heatmap_z(figs["A_Q (5×2)"]), seed_example()[2].numpy())
    assert "frozen" in figs["W_Q (5×3)"]["layout"]["title"]["subtitle"]["text"]


def test_next_and_back_walk_the_five_stages_into_the_next_step(at):
    titles = []
    for _ in range(5):
        at.button(key=None) if False else None
        next(b for b in at.button if b.label == "Next ▶").click().run()
        titles.append(stage_title(at))
    assert titles == ["Step 1 of 300 · ② Loss", "Step 1 of 300 · ③ Backward pass, W_Q frozen",
                      "Step 1 of 300 · ④ AdamW on A_Q and B_Q", "Step 1 of 300 · ⑤ The new A_Q, B_Q and Q",
                      "Step 2 of 300 · ① Forward pass"]
    next(b for b in at.button if b.label == "◀ Back").click().run()
    assert stage_title(at) == "Step 1 of 300 · ⑤ The new A_Q, B_Q and Q"
    assert "∂L/∂A_Q (5×2)" not in all_figures(at, "training") and "new A_Q (5×2)" in all_figures(at, "training")


def test_scrubbing_shows_other_steps_without_recomputing(at):
    assert len(at.trace_calls) == 1
    q1 = heatmap_z(all_figures(at, "training")["Q (3×3)"])
    at.slider(key="step").set_value(150).run()
    q150 = heatmap_z(all_figures(at, "training")["Q (3×3)"])
    at.slider(key="step").set_value(300).run()
    assert len(at.trace_calls) == 1  # the trace is cached; the slider only indexes it
    assert not np.allclose(q1, q150)
    T = heatmap_z(all_figures(at, "training")["target T (3×3)"])
    assert np.abs(q150 - T).max() < np.abs(q1 - T).max() / 10  # training got closer to T


def test_backward_stage_shows_gradients_and_a_frozen_w(at):
    at.radio(key="stage").set_value("backward").run()
    figs = all_figures(at, "training")
    assert {"G = ∂L/∂Q (3×3)", "∂L/∂B_Q (2×3)", "∂L/∂A_Q (5×2)", "∂L/∂X (flows through W_Q) (3×5)",
            "W_Q · no gradient (5×3)"} <= set(figs)
    assert any("none" in line.value and "frozen" in line.value for line in at.get("latex"))


def test_peft_init_starts_at_the_base_model_and_a_gets_no_first_gradient(at):
    at.selectbox(key="init").set_value("peft").run()
    X, W, _, _ = seed_example()
    np.testing.assert_allclose(heatmap_z(all_figures(at, "training")["Q (3×3)"]), (X @ W).numpy(), atol=1e-15)
    at.radio(key="stage").set_value("backward").run()
    figs = all_figures(at, "training")
    assert np.all(heatmap_z(figs["∂L/∂A_Q (5×2)"]) == 0) and np.any(heatmap_z(figs["∂L/∂B_Q (2×3)"]) != 0)
    assert any("exactly zero" in i.value for i in at.info)
    at.slider(key="step").set_value(2).run()
    assert np.any(heatmap_z(all_figures(at, "training")["∂L/∂A_Q (5×2)"]) != 0)  # A follows from step 2


def test_changing_hyperparameters_retrains(at):
    before = all_figures(at, "training")["Loss L before each update"]["data"]
    at.number_input(key="lr").set_value(0.05).run()
    after = all_figures(at, "training")["Loss L before each update"]["data"]
    assert len(at.trace_calls) == 2
    lora = lambda data: np.asarray(data[1]["y"]["bdata"] if isinstance(data[1]["y"], dict) else data[1]["y"])  # noqa: E731
    assert not np.array_equal(lora(before), lora(after))
    assert at.query_params["lr"] in ("0.05", ["0.05"])


@pytest.mark.parametrize("key,value,words", [
    ("lr", 0.0, "learning rate must be positive"), ("lr", -0.1, "learning rate must be positive"),
    ("beta1", 1.0, "β1 must be in [0, 1)"), ("beta2", -0.5, "β2 must be in [0, 1)"),
    ("eps", 0.0, "eps must be positive"), ("steps", 5000, "steps must be an integer in 1…2000"),
    ("rstar", 9, "r* = 9 must be in 1…min(d, k) = 3"),
])
def test_bad_hyperparameters_get_a_message_and_nothing_is_computed(at, key, value, words):
    at.number_input(key=key).set_value(value).run()
    assert not at.exception
    assert any(words in e.value for e in at.error), [e.value for e in at.error]
    assert len(at.trace_calls) == 1 and "Loss L before each update" not in all_figures(at, "training")


def test_a_huge_learning_rate_diverges_with_a_warning(at):
    # the decay factor 1 − lr·λ is −1e8: the weights grow a hundred million-fold a step until they overflow
    at.number_input(key="lr").set_value(1e10).run()
    assert not at.exception
    warning = " ".join(w.value for w in at.warning)
    assert "diverged at step" in warning
    last = at.slider(key="step").max
    assert 1 < last < 300 and f"diverged at step {int(last) + 1}:" in warning
    at.slider(key="step").set_value(last).run()
    assert all(np.isfinite(heatmap_z(f)).all() for t, f in all_figures(at, "training").items() if f["data"][0]["type"] == "heatmap")
    at.number_input(key="lr").set_value(1e200).run()  # so fast that not one step stays finite
    assert not at.exception and any("Nothing to step through" in w.value for w in at.warning)


def test_url_opens_a_stage_and_bad_values_get_notices(app_test):
    app_test.run()  # AppTest can only switch to a page that a run has registered
    app_test.query_params.update({"step": "3", "stage": "adamw", "lr": "-1", "init": "bogus"})
    app_test.switch_page("pages/training.py").run()
    assert not app_test.exception
    notices = " ".join(w.value for w in app_test.warning)
    assert "`lr=-1`" in notices and "`init=bogus`" in notices
    assert stage_title(app_test) == "Step 3 of 300 · ④ AdamW on A_Q and B_Q"


def test_play_runs_to_the_last_step_and_stops(at):
    at.number_input(key="steps").set_value(3).run()
    next(b for b in at.button if b.label == "Play").click().run()
    assert at.session_state["step"] == 3 and not at.session_state["playing"]
    assert stage_title(at).startswith("Step 3 of 3")
