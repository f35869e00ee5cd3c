"""The Real model page's figures (lora_app.figures.real): the numbers passed are the numbers drawn,
pending runs stay pending, every printed text reads at 4.5:1 on its cell, and fonts grow with ``scale``."""
import numpy as np
import plotly.graph_objects as go
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as hst

from lora_app import figures
from lora_app.figures import real
from lora_app.figures.base import contrast
from lora_core.rank import sigma_energy_share

WHITE, BLACK = (255, 255, 255), (0, 0, 0)
PLACEMENTS = ["Q · r=8", "K · r=8", "Q+V · r=4", "FFN · r=3", "full fine-tuning"]
TASKS = ["reverse", "permute"]
TRAINABLE = [512, 512, 1024, 576, 25_034]
GRID = np.array([[0.5, 0.9], [0.2, np.nan], [0.987, 0.95], [0.05, 0.999], [1.0, np.nan]])


def rgb(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))


def valid(fig: go.Figure) -> go.Figure:
    go.Figure(fig.to_dict())  # the builders skip plotly's validation: check every property here
    return fig


def trace(fig, **match):
    return next(t for t in fig.data if all(getattr(t, k) == v for k, v in match.items()))


# --- run_curves ------------------------------------------------------------------------------------

def test_run_curves_carry_the_run_and_the_baseline():
    losses, steps, accs = np.geomspace(2.3, 1e-3, 60), [0, 25, 50, 60], [0.1, 0.6, 0.95, 0.97]
    full = (np.geomspace(2.3, 1e-4, 60), [0, 25, 50, 60], [0.1, 0.8, 0.99, 1.0])
    fig = valid(real.run_curves(losses, steps, accs, full=full, total_steps=300))
    lora_loss = trace(fig, name="LoRA", yaxis="y")
    np.testing.assert_array_equal(lora_loss.y, losses)
    np.testing.assert_array_equal(lora_loss.x, np.arange(1, 61))
    lora_acc = trace(fig, name="LoRA", yaxis="y2")
    assert list(lora_acc.x) == steps and list(lora_acc.y) == accs
    full_acc = trace(fig, name="full fine-tuning", yaxis="y2")
    assert list(full_acc.y) == full[2] and full_acc.line.dash == "dot" and full_acc.line.color == figures.FULL_COLOUR
    assert lora_acc.line.color == figures.LORA_COLOUR
    assert fig.layout.yaxis.type == "log"  # 2.3 … 1e-4 is more than two decades
    assert list(fig.layout.xaxis2.range) == [0, 300] and fig.layout.xaxis.matches == "x2"
    assert list(fig.layout.yaxis2.range)[0] == 0 and fig.layout.yaxis2.tickformat == ".0%"


def test_run_curves_start_empty_or_with_one_point():
    empty = valid(real.run_curves([], [], [], total_steps=300))
    assert all(len(t.x) == 0 for t in empty.data) and list(empty.layout.xaxis2.range) == [0, 300]
    one = valid(real.run_curves([2.3], [0], [0.1]))
    loss = trace(one, yaxis="y")
    assert list(loss.y) == [2.3] and "markers" in loss.mode  # one point is drawn, not a zero-length line
    assert one.layout.yaxis.type == "linear"
    flat = real.run_curves(np.linspace(2.3, 0.5, 50), [0, 25, 50], [0.1, 0.3, 0.5])
    assert flat.layout.yaxis.type == "linear"


def test_run_curves_scale_their_fonts_and_keep_their_size():
    small = real.run_curves([1.0, 0.5], [0], [0.1], height=380, width=700)
    big = real.run_curves([1.0, 0.5], [0], [0.1], height=600, width=1200, scale=2.0)
    assert big.layout.font.size == 2 * small.layout.font.size
    assert big.layout.title.font.size > small.layout.title.font.size
    assert (big.layout.height, big.layout.width) == (600, 1200)


# --- placement_grid ----------------------------------------------------------------------------------

def cell_colour(v: float) -> tuple:
    return tuple(real.sequential_colours(v))


def test_placement_grid_prints_each_accuracy_and_leaves_pending_runs_grey():
    fig = valid(real.placement_grid(PLACEMENTS, TASKS, GRID, TRAINABLE))
    values = trace(fig, type="heatmap", colorscale=tuple(tuple(s) for s in real.SEQUENTIAL))
    np.testing.assert_array_equal(np.asarray(values.z, dtype=float), GRID)  # NaN where NaN
    assert (values.zmin, values.zmax) == (0, 1)
    text = list(trace(fig, type="scatter").text)
    assert text[:4] == ["50.0 %", "90.0 %", "20.0 %", "…"]
    assert text == [real.PENDING_TEXT if np.isnan(v) else f"{100 * v:.1f} %" for v in GRID.ravel()]
    pending = fig.data[0]
    np.testing.assert_array_equal(np.isfinite(np.asarray(pending.z, dtype=float)), np.isnan(GRID))
    assert list(fig.layout.yaxis.ticktext) == ["Q · r=8 · 512", "K · r=8 · 512", "Q+V · r=4 · 1,024",
                                               "FFN · r=3 · 576", "full fine-tuning · 25,034"]
    assert list(fig.layout.xaxis.ticktext) == TASKS


def test_every_cell_text_of_the_grid_reads_at_aa_contrast():
    fig = real.placement_grid(PLACEMENTS, TASKS, GRID, TRAINABLE)
    colours = trace(fig, type="scatter").textfont.color
    for v, colour in zip(GRID.ravel(), colours):
        cell = rgb(real.PENDING) if np.isnan(v) else cell_colour(v)
        assert contrast(cell, rgb(colour)) >= 4.5, (v, colour)
    assert {"#000000", "#ffffff"} <= set(colours)  # black on the pale end, white on the dark end
    for t in np.linspace(0, 1, 101):  # whichever is picked, anywhere on the scale
        assert contrast(cell_colour(t), rgb(real.text_colour_on(real.sequential_colours(t)).item())) >= 4.5


def outlined(fig) -> set[tuple[int, int]]:
    return {(round((s.y0 + s.y1) / 2), round((s.x0 + s.x1) / 2)) for s in fig.layout.shapes if s.line.color == figures.HIGHLIGHT}


def test_the_best_cell_of_each_task_is_outlined():
    fig = real.placement_grid(PLACEMENTS, TASKS, GRID, TRAINABLE)
    assert outlined(fig) == {(4, 0), (3, 1)}  # 100 % on reverse, 99.9 % on permute


@settings(max_examples=60, deadline=None)
@given(hst.integers(1, 10), hst.integers(1, 3), hst.data())
def test_grid_with_random_accuracies(n_rows, n_cols, data):
    values = data.draw(hst.lists(hst.one_of(hst.floats(0, 1), hst.just(float("nan"))),
                                 min_size=n_rows * n_cols, max_size=n_rows * n_cols))
    A = np.array(values).reshape(n_rows, n_cols)
    fig = real.placement_grid([f"p{i}" for i in range(n_rows)], [f"t{j}" for j in range(n_cols)], A, [1] * n_rows)
    np.testing.assert_array_equal(np.asarray(fig.data[1].z, dtype=float), A)
    texts, colours = trace(fig, type="scatter").text, trace(fig, type="scatter").textfont.color
    for v, t, c in zip(A.ravel(), texts, colours):
        assert t == (real.PENDING_TEXT if np.isnan(v) else real.percent(v))
        assert contrast(rgb(real.PENDING) if np.isnan(v) else cell_colour(v), rgb(c)) >= 4.5
    expect = {(i, j) for j in range(n_cols) if np.isfinite(A[:, j]).any()
              for i in range(n_rows) if A[i, j] == np.nanmax(A[:, j])}
    assert outlined(fig) == expect


def test_grid_with_nothing_finished_or_nothing_at_all():
    waiting = valid(real.placement_grid(PLACEMENTS, TASKS, np.full((5, 2), np.nan), TRAINABLE))
    assert set(trace(waiting, type="scatter").text) == {real.PENDING_TEXT} and outlined(waiting) == set()
    valid(real.placement_grid([], [], [], []))


def test_grid_fonts_scale_and_the_height_follows_the_rows():
    small = real.placement_grid(PLACEMENTS, TASKS, GRID, TRAINABLE)
    big = real.placement_grid(PLACEMENTS, TASKS, GRID, TRAINABLE, scale=2.0, width=1400)
    assert trace(big, type="scatter").textfont.size > trace(small, type="scatter").textfont.size
    assert big.layout.yaxis.tickfont.size == 2 * small.layout.yaxis.tickfont.size
    assert big.layout.height > small.layout.height and big.layout.width == 1400
    assert real.placement_grid(PLACEMENTS, TASKS, GRID, TRAINABLE, height=500).layout.height == 500


# --- rank_curve ----------------------------------------------------------------------------------------

def test_rank_curve_draws_each_series_on_a_log2_axis():
    accs = {"reverse": [0.3, 0.5, 0.8, np.nan, np.nan], "permute": [0.6, 0.7, 0.9, 0.95, 0.96]}
    fig = valid(real.rank_curve([1, 2, 4, 8, 16], accs, full={"reverse": 0.99, "permute": 0.97}))
    for name, values in accs.items():
        t = trace(fig, name=name)
        assert list(t.x) == [1, 2, 4, 8, 16]
        np.testing.assert_array_equal(np.asarray(t.y, dtype=float), values)
    assert fig.layout.xaxis.type == "log" and list(fig.layout.xaxis.ticktext) == ["1", "2", "4", "8", "16"]
    dashed = [t for t in fig.data if t.line.dash == "dash"]
    assert [list(t.y) for t in dashed] == [[0.99, 0.99], [0.97, 0.97]]
    assert dashed[0].line.color == trace(fig, name="reverse").line.color
    assert trace(fig, name="reverse").marker.symbol != trace(fig, name="permute").marker.symbol  # not colour alone
    assert "99.0 %" in dashed[0].name


def test_rank_curve_empty_and_scaled():
    valid(real.rank_curve([], {}))
    small, big = real.rank_curve([1, 2], {"a": [0.1, 0.2]}), real.rank_curve([1, 2], {"a": [0.1, 0.2]}, scale=1.5)
    assert big.layout.font.size > small.layout.font.size and big.data[0].marker.size > small.data[0].marker.size


# --- update_spectrum -----------------------------------------------------------------------------------

def test_energy_share_matches_numpy_and_finetune():
    """The spectrum's shares come from the core's σ share, the one finetune.energy_share computes from ΔW."""
    rng = np.random.default_rng(0)
    M = rng.normal(size=(32, 16))
    sigma = np.linalg.svd(M, compute_uv=False)
    from lora_core.experiments import energy_share
    for r in (1, 4, 16):
        oracle = float(np.sum(sigma[:r] ** 2) / np.linalg.norm(M, "fro") ** 2)
        assert sigma_energy_share(sigma, r) == pytest.approx(oracle)
        assert sigma_energy_share(sigma[::-1], r) == pytest.approx(energy_share(torch.tensor(M), r))
    assert sigma_energy_share(np.zeros(4), 2) == 0.0


def test_update_spectrum_keeps_true_sigmas_and_clips_only_for_display():
    full = np.geomspace(1, 0.01, 32)
    lora = np.r_[[0.9, 0.5, 0.3, 0.2], np.full(28, 1e-17)]
    fig = valid(real.update_spectrum(full, lora, 4, "ΔW of layers.0.q_proj"))
    lo = trace(fig, name="LoRA")
    np.testing.assert_array_equal(lo.customdata, lora)
    floor = fig.layout.meta["floor"]
    assert floor == pytest.approx(real.SIGMA_FLOOR * 1.0)
    np.testing.assert_array_equal(lo.y, np.maximum(lora, floor))
    assert "axis floor" in lo.text[4] and "axis floor" not in lo.text[3]
    assert fig.layout.yaxis.type == "log"
    shares = fig.layout.meta["energy_share"]
    assert shares["LoRA"] == pytest.approx(sigma_energy_share(lora, 4))
    assert shares["full fine-tuning"] == pytest.approx(np.sum(full[:4] ** 2) / np.sum(full ** 2))
    assert real.percent(shares["full fine-tuning"]) in fig.layout.title.subtitle.text
    shade = fig.layout.shapes[0]
    assert (shade.x0, shade.x1) == (0.5, 4.5)
    np.testing.assert_array_equal(trace(fig, name="full fine-tuning").x, np.arange(1, 33))


def test_update_spectrum_without_updates_or_with_zeros():
    none = valid(real.update_spectrum(None, None, 4, "nothing"))
    assert len(none.data) == 0 and "no update" in none.layout.title.subtitle.text
    zero = valid(real.update_spectrum(np.zeros(5), None, 4, "zero"))
    assert zero.layout.yaxis.type != "log" and zero.layout.meta["energy_share"]["full fine-tuning"] == 0.0
    one = valid(real.update_spectrum(None, [0.5, 0.2], 4, "r above n", scale=2))
    assert (one.layout.shapes[0].x1, one.layout.font.size) == (2.5, 2 * figures.FONT["size"])


# --- attention_map_tokens ------------------------------------------------------------------------

TOKENS = [3, 1, 4, 1, 5, 9, 2, 6]


def test_attention_map_names_its_tokens_and_is_the_attention_pages_map():
    M = np.random.default_rng(0).dirichlet(np.ones(8), 8)
    q = [f"p{i + 1}:{d}" for i, d in enumerate(TOKENS)]
    k = [str(d) for d in TOKENS]
    fig = valid(real.attention_map_tokens(M, q, k, "layer 1, head 1"))
    np.testing.assert_array_equal(fig.data[0].z, M)
    assert list(fig.layout.yaxis.ticktext) == q and list(fig.layout.xaxis.ticktext) == k
    assert list(fig.layout.xaxis.tickvals) == list(range(1, 9))
    plain = figures.attention.attention_map(M, "layer 1, head 1")
    assert fig.data[0].colorscale == plain.data[0].colorscale and list(fig.data[1].text) == list(plain.data[1].text)
    assert fig.layout.margin.l > plain.layout.margin.l  # room for "p1:3" on the left
    colours = fig.data[1].textfont.color
    for v, c in zip(M.ravel(), colours):
        assert contrast(figures.scale_colour(np.clip((v + 1) / 2, 0, 1)), rgb(c)) >= 4.5
    big = real.attention_map_tokens(M, q, k, "layer 1, head 1", scale=2)
    assert big.layout.yaxis.tickfont.size > fig.layout.yaxis.tickfont.size


def test_heatmap_tick_labels_are_optional_and_checked():
    M = np.arange(6, dtype=float).reshape(2, 3)
    before = figures.matrix_heatmap(M, "M").to_dict()
    assert figures.matrix_heatmap(M, "M", row_labels=None, col_labels=None).to_dict() == before
    labelled = figures.matrix_heatmap(M, "M", row_labels=["a", "b"], col_labels=["x", "y", "z"])
    assert list(labelled.layout.xaxis.ticktext) == ["x", "y", "z"] and list(labelled.layout.yaxis.ticktext) == ["a", "b"]
    with pytest.raises(ValueError, match="labels"):
        figures.matrix_heatmap(M, "M", col_labels=["x"])


# --- sequence_grid ----------------------------------------------------------------------------------

def test_sequence_grid_marks_each_digit_right_or_wrong_not_by_colour_alone():
    typed, target = TOKENS, TOKENS[::-1]
    base, adapted = sorted(TOKENS), [6, 2, 9, 5, 0, 4, 1, 3]
    fig = valid(real.sequence_grid({"base model": base, "adapted model": adapted}, target, tokens=typed))
    right = [sum(a == b for a, b in zip(row, target)) for row in (base, adapted)]
    assert right == [0, 7]
    assert list(fig.layout.yaxis.ticktext) == ["typed", "right answer", "base model · 0/8 right", "adapted model · 7/8 right"]
    text = np.array(fig.data[1].text).reshape(4, 8)
    assert list(text[0]) == [str(d) for d in typed] and list(text[1]) == [str(d) for d in target]
    for row, digits in ((2, base), (3, adapted)):
        for j, d in enumerate(digits):
            ok = d == target[j]
            assert text[row, j] == f"{d} {real.RIGHT_MARK if ok else real.WRONG_MARK}"
    z = np.asarray(fig.data[0].z, dtype=float)
    assert list(z[3]) == [1, 1, 1, 1, 2, 1, 1, 1] and set(z[0]) == {0}
    assert fig.data[1].textfont.color == "#000000"
    for fill in (real.RIGHT_FILL, real.WRONG_FILL, real.PLAIN_FILL):
        assert contrast(rgb(fill), BLACK) >= 4.5
    assert real.RIGHT_MARK in fig.layout.title.subtitle.text and real.WRONG_MARK in fig.layout.title.subtitle.text


def test_sequence_grid_handles_short_and_empty_rows():
    fig = valid(real.sequence_grid({"model": [3]}, [3, 2, 1], tokens=[1, 2, 3]))
    z = np.asarray(fig.data[0].z, dtype=float)
    assert z[2, 0] == 1 and np.isnan(z[2, 1:]).all() and list(fig.data[1].text[6:]) == ["3 ✓", "", ""]
    valid(real.sequence_grid({}, []))
    alone = valid(real.sequence_grid({"base model (sorts)": [1, 2]}, [1, 3], target_label="sorted"))
    assert list(alone.layout.yaxis.ticktext) == ["sorted", "base model (sorts) · 1/2 right"]  # no typed row without tokens
    big = real.sequence_grid({"m": [1]}, [1], scale=2, width=1200)
    assert big.layout.width == 1200 and big.data[1].textfont.size > fig.data[1].textfont.size
