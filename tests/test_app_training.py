"""AppTest of the Training page: stepping, scrubbing without recomputing, hyperparameters, bad input."""
import math

import numpy as np
import pytest
from test_lora import Q_LORA

import lora_app.compute.training as compute_training
from helpers import all_figures, figures, heatmap_z, open_expander, open_view
from lora_app.config import TRAINING_DEFAULTS
from lora_app.config.fields import format_value
from lora_app.echo import quoted
from lora_core import make_target, seed_example


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
    lora = lambda data: np.asarray(data[1]["y"]["bdata"] if isinstance(data[1]["y"], dict) else data[1]["y"])
    assert not np.array_equal(lora(before), lora(after))
    assert at.query_params["lr"] in ("0.05", ["0.05"])


@pytest.mark.parametrize("key,value,words", [
    ("lr", 0.0, ("lr", "is outside (0, 10]")), ("lr", -0.1, ("lr", "is outside (0, 10]")),
    ("beta1", 1.0, ("β1", "is outside [0, 1)")), ("beta2", -0.5, ("β2", "is outside [0, 1)")),
    ("eps", 0.0, ("ε", "is outside (0, 1]")), ("steps", 5000, ("steps N", "is outside 1…2000")),
    ("rstar", 9, ("r*", "is outside 1…min(d, k) = 3")),
])
def test_bad_hyperparameters_get_a_message_and_the_last_good_run_stays(at, key, value, words):
    at.number_input(key=key).set_value(value).run()
    assert not at.exception
    label, why = words
    want = f"{quoted(label, value)} {why}; using the last good value, {quoted(label, format_value(TRAINING_DEFAULTS[key]))}."
    assert [e.value for e in at.error] == [want]
    # the widget is back at its last good value, and the run on screen is the one it made: not retrained
    assert at.session_state[key] == compute_training.TrainingConfig.__dataclass_fields__[key].default
    assert len(at.trace_calls) == 1 and "Loss L before each update" in all_figures(at, "training")


def test_a_huge_learning_rate_diverges_with_a_warning(at):
    # lr·λ = 100: the decay factor 1 − lr·λ is −99, so the weights grow 99-fold a step until they overflow
    at.number_input(key="wd").set_value(10.0).run()
    at.number_input(key="lr").set_value(10.0).run()
    assert not at.exception
    warning = " ".join(w.value for w in at.warning)
    assert "diverged at step" in warning
    last = at.slider(key="step").max
    assert 1 < last < 300 and f"diverged at step {int(last) + 1}:" in warning
    at.slider(key="step").set_value(last).run()
    heatmaps = [f for f in all_figures(at, "training").values() if f["data"][0]["type"] == "heatmap"]
    assert all(np.isfinite(heatmap_z(f)).all() for f in heatmaps)


def test_url_opens_a_stage_and_bad_values_get_notices(app_test):
    app_test.run()  # AppTest can only switch to a page that a run has registered
    app_test.query_params.update({"step": "3", "stage": "adamw", "lr": "-1", "init": "bogus"})
    app_test.switch_page("pages/training.py").run()
    assert not app_test.exception
    notices = " ".join(w.value for w in app_test.warning)
    assert quoted("lr", "-1") in notices and quoted("init", "bogus") in notices
    assert stage_title(app_test) == "Step 3 of 300 · ④ AdamW on A_Q and B_Q"


def test_play_runs_to_the_last_step_and_stops(at):
    at.number_input(key="steps").set_value(3).run()
    next(b for b in at.button if b.label == "Play").click().run()
    assert at.session_state["step"] == 3 and not at.session_state["playing"]
    assert stage_title(at).startswith("Step 3 of 3")


# --- forged settings: one check for every value, a message, the last good run ----------------

SETTINGS = [("rstar", "r*"), ("lr", "lr"), ("beta1", "β1"), ("beta2", "β2"), ("eps", "ε"), ("wd", "weight decay λ"),
            ("steps", "steps N")]
GOOD = {"rstar": 2, "lr": 0.05, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6, "wd": 0.1, "steps": 40}


def _set_good(at, key):
    at.number_input(key=key).set_value(GOOD[key]).run()
    assert not at.exception and not at.error
    return dict(at.query_params), len(at.trace_calls)


def _assert_last_good_run(at, key, label, url, calls, sent=None, exact=True, note=None):
    try:
        _check_last_good_run(at, key, label, url, calls, sent, exact)
    except AssertionError as failure:
        failure.add_note(f"after the bad value {note!r}")  # several values are sent in turn on one page
        raise


def _check_last_good_run(at, key, label, url, calls, sent, exact):
    assert not at.exception, at.exception
    shown = [e.value for e in at.error]
    if exact:  # our check's message: the field, the value sent, the value used
        sent_as = {quoted(label, v) + " " for v in (sent, float(sent), int(sent) if math.isfinite(sent) else sent)}
        assert len(shown) == 1 and any(shown[0].startswith(q) for q in sent_as), shown  # the widget may send 3 as 3.0
        assert shown[0].endswith(f"; using the last good value, {quoted(label, format_value(GOOD[key]))}."), shown[0]
    else:  # refused before our check (lora_app.server.widget_guard): some message still names the field
        assert any(label in m or key in m for m in shown + [w.value for w in at.warning]), shown
    assert at.session_state[key] == GOOD[key] and at.number_input(key=key).value == GOOD[key]
    assert len(at.trace_calls) == calls and dict(at.query_params) == url  # the same run, from the last good values
    assert "Loss L before each update" in all_figures(at, "training")


@pytest.mark.parametrize("key,label", SETTINGS)
def test_a_bad_setting_in_session_state_gets_a_message_and_the_run_keeps_the_last_good_values(at, key, label):
    """Each bad value in turn on one page: each gets its own message, and each run is the last good one."""
    url, calls = _set_good(at, key)
    outside = {"rstar": 1.5, "steps": 2.5, "lr": 10.5, "beta1": 1.0, "beta2": 1.5, "eps": 1.5, "wd": 10.5}[key]
    # outside: just outside the range, or not a whole number
    for value in [float("inf"), float("-inf"), float("nan"), 1e308, -1e308, outside, -3]:
        at.session_state[key] = value  # what a forged widget message leaves in session state
        at.run()
        _assert_last_good_run(at, key, label, url, calls, value, note=value)


def _forged_message(at, key, value):
    """Rerun with the widget's state replaced by a hand-made protobuf, as a forged browser message would be."""
    states = at._tree.get_widget_states()
    ws = next(w for w in states.widgets if w.id == at.number_input(key=key).id)
    ws.ClearField("value") if ws.WhichOneof("value") else None
    if isinstance(value, bool):
        ws.bool_value = value
    elif isinstance(value, float):
        ws.double_value = value
    elif isinstance(value, str):
        ws.string_value = value
    elif isinstance(value, list):
        ws.double_array_value.data.extend(value)
    elif isinstance(value, dict):
        import json
        ws.json_value = json.dumps(value)
    return at._run(widget_state=states)


@pytest.mark.parametrize("key,label", SETTINGS)
def test_a_forged_widget_message_gets_a_message_and_the_run_keeps_the_last_good_values(at, key, label):
    """Each forged value in turn on one page (a state with no value at all is left out: Streamlit reads it as 0,
    a good β1, β2 or λ; see lora_app.server.widget_guard)."""
    url, calls = _set_good(at, key)
    for value in [float("inf"), float("nan"), 1e308, "0.5", [1.0, 2.0], {"x": 1}, True]:
        _forged_message(at, key, value)
        # our check answers what reaches the page; server.widget_guard, where installed, drops a message Streamlit cannot read
        _assert_last_good_run(at, key, label, url, calls, exact=False, note=value)


@pytest.mark.parametrize("value", [float("inf"), float("nan"), 1e308])
def test_a_forged_widget_value_is_refused_without_a_traceback(at, value):
    """Through the widget itself, as far as AppTest lets a value through."""
    try:
        at.number_input(key="rstar").set_value(value).run()
    except Exception:  # noqa: BLE001 - AppTest's own checks may refuse it: then the value goes in as a widget's state would
        at.session_state["rstar"] = value
        at.run()
    assert not at.exception and at.session_state["rstar"] == 1
    assert any("r*" in m or "rstar" in m for m in [e.value for e in at.error] + [w.value for w in at.warning])


def test_a_valid_float_for_a_whole_number_setting_is_taken(at):
    at.session_state["rstar"] = 2.0
    at.run()
    assert not at.exception and not at.error
    assert at.session_state["rstar"] == 2 and isinstance(at.session_state["rstar"], int)
    assert at.query_params["rstar"] in ("2", ["2"])


# --- limits that leave something to do ------------------------------------------------------

def test_the_largest_sizes_train_at_least_10_steps():
    """n = 64, d = k = r = 1024, the sidebar's largest: the cap leaves a useful run, and it trains."""
    from lora_app.config import ExploreConfig, TrainingConfig
    cap = compute_training.max_steps_for(64, 1024, 1024, 1024)
    assert cap >= 10
    assert compute_training.checkpoint_every(64, 1024, 1024, 1024, cap) > cap  # nothing but the start and the end fits
    run = compute_training.training_run._info.func(TrainingConfig(ExploreConfig(n=64, d=1024, k=1024, r=1024), steps=10))
    assert run.n_steps == 10 and np.isfinite(run.losses).all() and run.losses[-1] < run.losses[0]
    assert len(run.states["A"]) == 0 and run.A_end.shape == (1024, 1024)


def test_the_cap_keeps_the_default_run_whole():
    assert compute_training.max_steps_for(3, 5, 3, 2) == 2000  # the seed: 300 steps by default, up to 2000
    assert compute_training.checkpoint_every(3, 5, 3, 2, 2000) == 1  # and every step's state kept, as before


@pytest.mark.parametrize("every_cap", [60, 200])
def test_a_checkpointed_run_shows_the_same_numbers_as_a_stored_one(monkeypatch, every_cap):
    """A run that keeps only checkpoints answers before, at, step and q_after with the stored run's numbers."""
    from lora_app.config import ExploreConfig, TrainingConfig
    cfg = TrainingConfig(ExploreConfig(), steps=40, lr=0.05)
    stored = compute_training.training_run._info.func(cfg)
    assert stored.every == 1
    monkeypatch.setattr(compute_training, "STORED_NUMBERS_CAP", every_cap)  # 3·r·(d + k) = 48 numbers a step
    ckpt = compute_training.training_run._info.func(cfg)
    assert ckpt.every > 1 and len(ckpt.states["A"]) == 40 // ckpt.every
    np.testing.assert_array_equal(ckpt.losses, stored.losses)
    np.testing.assert_array_equal(ckpt.A_end, stored.states["A"][-1])
    compute_training._replayed.clear()
    for t in range(1, 41):
        for a, b in zip(ckpt.before(t), stored.before(t)):
            np.testing.assert_array_equal(a, b)
        for field in ("A", "B", "exp_avg_A", "exp_avg_sq_B", "q", "grad_X", "update_A"):
            np.testing.assert_array_equal(ckpt.at(field, t), stored.at(field, t), err_msg=f"{field} at {t}")
        np.testing.assert_array_equal(ckpt.q_after(t), stored.q_after(t))
        assert ckpt.step(t).loss == stored.step(t).loss
    # what the replay cache shares between sessions is read-only all the way down
    replayed = compute_training._replayed._info.func(ckpt, cfg, 7)
    arrays = [replayed.A_in, replayed.B_in, replayed.q_after, *replayed.record[2:]]
    assert all(isinstance(a, np.ndarray) and not a.flags.writeable for a in arrays)


def test_asking_for_more_steps_than_fit_offers_the_largest_run(at, monkeypatch):
    # the cap at the seed's size, made to bite: a step costs STEP_OVERHEAD_S, so 0.03 s leaves 100 steps
    monkeypatch.setattr(compute_training, "TRAIN_SECONDS", 100 * compute_training.step_seconds(3, 5, 3, 2))
    at.number_input(key="steps").set_value(150).run()
    assert not at.exception
    warning = " ".join(w.value for w in at.warning)
    assert "capped at 100 steps" in warning and "asked for 150" in warning
    assert "Loss L before each update" not in all_figures(at, "training")
    button = next(b for b in at.button if b.key == "fit_steps")
    assert button.label == "Run the largest that fits (100 steps)"
    button.click().run()
    assert not at.exception and at.session_state["steps"] == 100
    assert stage_title(at) == "Step 1 of 100 · ① Forward pass"


def test_the_rank_verdict_stays_true_when_t_is_edited(app_test):
    """r ≥ r* means the loss can reach zero only while T is X·(W_Q + ΔW*); an edited T can lie out of reach."""
    from helpers import as_read
    at = app_test.run()
    at.switch_page("pages/training.py").run()
    open_view(at, "training", "loss")
    assert "r ≥ r*, so the adapter can represent ΔW* and the loss can fall to zero" in \
        " ".join(m.value for m in at.markdown)
    open_view(at, "training", "task")  # the T table is drawn: an edit comes from it
    key = f"edit_T_{at.session_state['editor_version'].get('T', 0)}"
    at.session_state[key] = {"edited_rows": {0: {"1": "5"}, 1: {"2": "-3"}}, "added_rows": [], "deleted_rows": []}
    at.run()
    open_view(at, "training", "loss")
    assert not at.exception
    shown = as_read(" ".join(m.value for m in at.markdown))
    assert "can fall to zero" not in shown
    import re
    floor = float(re.search(r"T has been edited, so ΔW\* no longer describes it: the lowest loss any rank-2 "
                            r"adapter can reach is ([0-9.e+-]+)\.", shown)[1])
    assert floor > 0  # the edited T - X·W_Q has rank 3 here: a rank-2 update leaves its smallest direction
