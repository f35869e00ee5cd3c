"""Every sentence on the Training page is true, and written as text: LaTeX only inside an equation.

The sentences are checked against the run they describe (its numbers, read back from the page's own
TrainingRun) and step 1's claims against an independent oracle: torch.optim.AdamW (foreach=False) on
the same X, W, A_Q, B_Q and T.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import lora_app.compute as compute
from helpers import figures, heatmap_z, open_view
from lora_app.text import latex
from lora_core import build_example, init_gaussian, init_peft_default, lora_scaling, make_target

LATEX_OUTSIDE_MATH = re.compile(r"\\[A-Za-z]+|\^\{|_\{|\\[,;!]")
TEXT_ELEMENTS = ("markdown", "caption", "info", "warning", "success", "error", "subheader", "title")
# any wording that says A_Q does not move in step 1 (true only with λ = 0)
CLAIMS_A_STILL = re.compile(r"only B_Q (moves|learns|changes)|A_Q (stays|does not (move|change)|is unchanged)", re.I)


@pytest.fixture
def at(app_test, monkeypatch):
    import streamlit as st
    st.cache_resource.clear()
    runs = []
    real = compute.training_run
    monkeypatch.setattr(compute, "training_run", lambda cfg: runs.append(real(cfg)) or runs[-1])
    app_test.runs = runs
    app_test.run()
    app_test.switch_page("pages/training.py").run()
    assert not app_test.exception
    return app_test


def texts(at) -> list[str]:
    out = []
    for kind in TEXT_ELEMENTS:
        out += [str(el.value) for el in at.get(kind)]
    return out


def outside_math(s: str) -> str:
    return re.sub(r"\$\$.*?\$\$|\$[^$]*\$", "", s, flags=re.S)


def configure(at, init: str = "seed", wd: float | None = None, lr: float | None = None):
    at.selectbox(key="init").set_value(init)
    if wd is not None:
        at.number_input(key="wd").set_value(wd)
    if lr is not None:
        at.number_input(key="lr").set_value(lr)
    at.run()
    assert not at.exception
    return at


def show(at, step: int, stage: str):
    at.session_state["step"] = step
    at.session_state["stage"] = stage
    at.run()
    assert not at.exception
    return at


def number_in(text: str) -> float:
    """A number as the page writes it in a sentence: 0.0123, −2.5, 9.442 × 10⁻⁴."""
    sup = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")
    m = re.fullmatch(r"(−?[\d.]+)(?: × 10([⁻⁰¹²³⁴⁵⁶⁷⁸⁹]+))?", text.strip())
    assert m, text
    mantissa = float(m.group(1).replace("−", "-"))
    return mantissa * 10.0 ** int(m.group(2).translate(sup)) if m.group(2) else mantissa


# --- numbers in sentences ---------------------------------------------------------------------------

@pytest.mark.parametrize("v,shown", [
    (9.442e-4, "9.442 × 10⁻⁴"), (1.5, "1.5"), (0.0, "0"), (-2e-7, "−2 × 10⁻⁷"), (123456.0, "1.235 × 10⁵"),
    (9999.96, "1 × 10⁴"), (0.001, "0.001"), (-0.25, "−0.25"), (float("nan"), "NaN"), (float("inf"), "∞"),
])
def test_a_number_in_a_sentence_is_text(v, shown):
    assert latex.sci_text(v) == shown
    assert not LATEX_OUTSIDE_MATH.search(latex.sci_text(v))


@pytest.mark.parametrize("v", [9999.96, 1e-9, 3.2e7])
def test_a_number_in_an_equation_never_falls_back_to_python_e_notation(v):
    assert "e" not in latex.sci(v).replace(r"\times", "")


@pytest.mark.parametrize("settings", [
    {}, {"init": "peft"}, {"init": "gaussian", "wd": 0.0}, {"init": "peft", "lr": 0.001}, {"lr": 0.2, "wd": 0.1},
])
def test_no_sentence_of_the_step_view_holds_latex(at, settings):
    configure(at, **settings)
    run = at.runs[-1]
    for step in sorted({1, 2, 38, run.n_steps // 2, run.n_steps}):
        for stage in ("forward", "loss", "backward", "adamw", "update"):
            for s in texts(show(at, step, stage)):
                assert not LATEX_OUTSIDE_MATH.search(outside_math(s)), (step, stage, s)


@pytest.mark.parametrize("view", ["loss", "task"])
@pytest.mark.parametrize("init", ["seed", "peft"])
def test_no_sentence_of_the_other_parts_holds_latex(at, view, init):
    configure(at, init)
    for s in texts(open_view(at, "training", view)):
        assert not LATEX_OUTSIDE_MATH.search(outside_math(s)), s


def test_the_update_sentence_gives_the_runs_losses_and_changes(at):
    run = at.runs[-1]
    for step in (1, 38, run.n_steps):
        show(at, step, "update")
        sentence = next(s for s in texts(at) if s.startswith("Loss before this step"))
        m = re.fullmatch(r"Loss before this step \*\*(.+?)\*\*, after it \*\*(.+?)\*\*\. Largest change: "
                         r"A_Q by (.+?), B_Q by (.+?), W_Q by 0\.(.*)", sentence, flags=re.S)
        assert m, sentence
        before, after, dA, dB = (number_in(m.group(i)) for i in range(1, 5))
        assert before == pytest.approx(run.losses[step - 1], rel=6e-4)
        assert after == pytest.approx(run.losses[step], rel=6e-4)
        A_old, B_old = run.before(step)
        assert dA == pytest.approx(np.abs(run.at("A", step) - A_old).max(), rel=6e-3, abs=0)
        assert dB == pytest.approx(np.abs(run.at("B", step) - B_old).max(), rel=6e-3, abs=0)
    assert run.losses[38] < 1e-3  # after step 38 the loss needs a power of ten


# --- step 1 with B_Q = 0 -----------------------------------------------------------------------------

def oracle_first_step(init: str, wd: float, lr: float = 0.02):
    """The default example's A_Q and B_Q before and after one torch.optim.AdamW step (foreach=False)."""
    X, W, _, _ = build_example("seed", 0, 3, 5, 3, 2, (), dtype=torch.float64)
    A0, B0 = (init_peft_default if init == "peft" else init_gaussian)(5, 3, 2, torch.Generator().manual_seed(0))
    T = make_target(X, W, 1, seed=0).T
    s = lora_scaling(2.0, 2, False)
    A, B = A0.clone().requires_grad_(True), B0.clone().requires_grad_(True)
    opt = torch.optim.AdamW([A, B], lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=wd, foreach=False)
    F.mse_loss(X @ W + s * (X @ A) @ B, T).backward()
    assert torch.count_nonzero(A.grad) == 0  # B_Q = 0: A_Q's first gradient is exactly zero
    opt.step()
    return A0.numpy(), A.detach().numpy(), B.detach().numpy()


@pytest.mark.parametrize("init", ["peft", "gaussian"])
def test_with_weight_decay_a_q_shrinks_by_one_minus_lr_lambda_in_step_1_exactly(init):
    A0, A1, _ = oracle_first_step(init, wd=0.01)
    np.testing.assert_array_equal(A1, A0 * (1 - 0.02 * 0.01))
    assert np.abs(A1 - A0).max() > 0
    A0, A1, _ = oracle_first_step(init, wd=0.0)
    np.testing.assert_array_equal(A1, A0)


@pytest.mark.parametrize("init", ["peft", "gaussian"])
@pytest.mark.parametrize("wd", [0.0, 0.01, 0.1])
def test_the_step_1_sentences_are_true_for_every_weight_decay(at, init, wd):
    configure(at, init, wd=wd)
    A0, A1, B1 = oracle_first_step(init, wd)
    change = np.abs(A1 - A0).max()
    assert (change == 0) == (wd == 0)

    show(at, 1, "update")
    np.testing.assert_array_equal(heatmap_z(figures(at)["new A_Q (5×2)"]), A1)  # the page's run is the oracle's
    np.testing.assert_allclose(heatmap_z(figures(at)["new B_Q (2×3)"]), B1, rtol=1e-12, atol=1e-15)
    update = texts(at)
    sentence = next(s for s in update if s.startswith("Loss before this step"))
    shown = number_in(re.search(r"A_Q by (.+?),", sentence).group(1))
    assert shown == pytest.approx(change, rel=6e-3, abs=0)

    show(at, 1, "backward")
    backward = texts(at)
    info = next(s for s in backward if "∂L/∂A_Q" in s and "zero" in s)
    lesson = texts(open_view(at, "training", "loss"))
    open_view(at, "training", "step")
    for s in update + backward + lesson:
        if CLAIMS_A_STILL.search(s):
            assert change == 0, f"says A_Q does not move in step 1, but weight decay moves it by {change:.3g}: {s}"
    if wd > 0:
        # the info says by how much: the factor 1 − lr·λ and the largest change, both computed
        assert "1 − lr·λ" in info and f"{1 - 0.02 * wd:.6g}" in info, info
        assert latex.sci_text(change, 3) in info, info
    else:
        assert "stays exactly" in info, info
