"""The Attention, Rank and Scale pages' figure builders: what each figure carries, read back from its JSON."""
import json
import math

import numpy as np
import plotly.graph_objects as go

from helpers import decode
from lora_app.figures import DIVERGING, FONT, ROLE_COLOURS
from lora_app.figures.attention import attention_map
from lora_app.figures.rank import error_curve, param_count_curve, singular_value_bars
from lora_app.figures.scale import PART_LABELS, benchmark_figure, memory_bars


def spec(fig) -> dict:
    """The figure as the browser receives it (numpy arrays as base64 blocks), after checking it is valid plotly."""
    go.Figure(fig.to_dict())  # raises on any property plotly does not know
    return json.loads(fig.to_json())


def title(axis: dict) -> str:
    # plotly.js 3 draws only {"text": …}; a bare string (what an unvalidated figure keeps) shows nothing
    return axis["title"]["text"]


def traces(fig, kind: str) -> list[dict]:
    return [t for t in spec(fig)["data"] if t["type"] == kind]


# --- attention ----------------------------------------------------------------------------

def test_attention_map_names_the_tokens_and_keeps_the_shared_scale():
    W = np.array([[0.2, 0.8], [0.5, 0.5]])
    s = spec(attention_map(W, "weights"))
    heat = s["data"][0]
    np.testing.assert_array_equal(decode(heat["z"]), W)
    assert (heat["zmin"], heat["zmax"]) == (-1.0, 1.0) and heat["colorscale"] == [list(c) for c in DIVERGING]
    assert title(s["layout"]["xaxis"]).startswith("key token")
    assert title(s["layout"]["yaxis"]) in ("query token i", "query i", "i")  # as long as the side allows
    assert s["layout"]["yaxis"]["range"][0] > s["layout"]["yaxis"]["range"][1]  # row 1 on top, as in the matrices
    assert list(s["data"][1]["text"]) == ["0.20", "0.80", "0.50", "0.50"]


def test_masked_scores_are_blank_cells_of_the_usual_size():
    scores = np.array([[0.5, np.nan], [0.25, 0.75]])
    s = spec(attention_map(scores, "scores"))
    z = decode(s["data"][0]["z"])
    assert np.isnan(z[0, 1]) and z[1, 0] == 0.25
    assert s["layout"]["height"] == spec(attention_map(np.nan_to_num(scores), "scores"))["layout"]["height"]


def test_attention_map_is_taller_than_a_plain_heatmap_by_its_axis_title():
    from lora_app.figures import matrix_heatmap
    W = np.full((4, 4), 0.25)
    mapped, plain = attention_map(W, "w", cell_px=50), matrix_heatmap(W, "w", zmax=1.0, decimals=2, cell_px=50)
    assert mapped.layout.height > plain.layout.height  # room under the cells for "key token j"
    m1, m2 = mapped.layout.margin, plain.layout.margin
    assert mapped.layout.height - m1.t - m1.b == plain.layout.height - m2.t - m2.b == 200  # the cells keep their size


# --- rank ---------------------------------------------------------------------------------

def test_singular_values_of_a_rank_2_product_show_the_zero_on_a_log_axis():
    sigma = np.array([0.14, 0.02, 8.5e-18])
    fig = singular_value_bars(sigma, 2, "σ of ΔW", tol=1.6e-16, kept="within r", dropped="beyond r")
    kept, dropped = traces(fig, "bar")
    assert kept["name"] == "within r" and decode(kept["x"]).tolist() == [1, 2]
    assert dropped["name"] == "beyond r" and decode(dropped["x"]).tolist() == [3]
    assert kept["marker"]["color"] == ROLE_COLOURS["trainable"]
    np.testing.assert_array_equal(decode(dropped["customdata"]), [8.5e-18])  # the hover keeps the true value
    layout = spec(fig)["layout"]
    assert layout["yaxis"]["type"] == "log"
    lo, hi = layout["yaxis"]["range"]
    assert lo < math.log10(8.5e-18) and hi > math.log10(0.14)  # every bar fits, the tiny one too
    assert any(sh.get("y0") == 1.6e-16 for sh in layout["shapes"])  # the rounding line
    assert any("1.6e-16" in a["text"] for a in layout["annotations"])
    assert dropped["text"] == ["8.5e-18"]


def test_exact_zeros_are_drawn_at_the_floor_and_labelled_zero():
    fig = singular_value_bars(np.array([1.0, 0.0]), 1, "σ", tol=1e-16)
    dropped = traces(fig, "bar")[1]
    assert dropped["text"] == ["0"] and decode(dropped["customdata"]).tolist() == [0.0]
    floor = decode(dropped["y"])[0]
    assert 0 < floor < 1e-16 and math.log10(floor) >= spec(fig)["layout"]["yaxis"]["range"][0]


def test_a_zero_matrix_says_so_and_a_gentle_spectrum_stays_linear():
    zero = spec(singular_value_bars(np.zeros(3), 2, "σ", tol=0.0))
    assert "every singular value is exactly 0" in zero["layout"]["annotations"][0]["text"]
    flat = spec(singular_value_bars(np.array([1.0, 0.5, 1 / 3]), 2, "σ"))
    assert flat["layout"]["yaxis"].get("type") != "log"
    assert flat["layout"]["yaxis"]["range"][1] > 1.0


def test_the_kept_bars_follow_r():
    sigma = np.array([3.0, 2.0, 1.0, 0.5])
    for r in (1, 3, 4):
        bars = traces(singular_value_bars(sigma, r, "σ"), "bar")
        assert len(decode(bars[0]["x"])) == r
        assert len(bars) == (1 if r == 4 else 2)


def test_error_curve_marks_the_current_rank_in_percent():
    fig = error_curve(np.arange(1, 4), np.array([0.5, 0.25, 0.0]), 2)
    line, mark = traces(fig, "scatter")
    np.testing.assert_allclose(decode(line["y"]), [50, 25, 0])
    assert mark["x"] == [2] and mark["y"] == [25.0] and mark["text"] == ["r = 2: 25.0%"]
    assert spec(fig)["layout"]["xaxis"]["dtick"] == 1


def test_param_count_curve_crosses_at_the_break_even_rank():
    ranks = np.arange(1, 4)
    fig = param_count_curve(ranks, ranks * 8, 15, 15 / 8, 2)
    full, lora, mark = traces(fig, "scatter")
    assert decode(full["y"]).tolist() == [15, 15, 15] and decode(lora["y"]).tolist() == [8, 16, 24]
    assert mark["y"] == [16] and "16" in mark["name"]
    layout = spec(fig)["layout"]
    assert any(sh.get("x0") == 1.875 for sh in layout["shapes"])
    assert any("1.875" in a["text"] for a in layout["annotations"])


# --- scale --------------------------------------------------------------------------------

def test_memory_bars_stack_every_part_and_label_the_totals():
    full = {"weights": 2e9, "gradients": 2e9, "master_weights": 4e9, "optimizer_states": 8e9}
    lora = {"weights": 2e9, "gradients": 1e6, "master_weights": 2e6, "optimizer_states": 4e6}
    fig = memory_bars(full, lora, "memory")
    bars = traces(fig, "bar")
    assert [b["name"] for b in bars] == list(PART_LABELS.values())
    totals = np.sum([decode(b["x"]) for b in bars], axis=0)
    np.testing.assert_allclose(totals, [sum(lora.values()) / 1e9, sum(full.values()) / 1e9])
    layout = spec(fig)["layout"]
    assert layout["barmode"] == "stack"
    assert {a["text"] for a in layout["annotations"]} == {"<b>16 GB</b>", "<b>2.01 GB</b>"}
    assert bars[0]["marker"]["color"] == ROLE_COLOURS["frozen"]


def test_benchmark_figure_shows_every_step_and_the_state_bytes():
    full_ms, lora_ms = np.array([20.0, 22.0, 21.0]), np.array([3.0, 3.5, 3.2])
    fig = benchmark_figure(full_ms, lora_ms, 50_331_648, 393_216)
    boxes, bars = traces(fig, "box"), traces(fig, "bar")
    assert [b["name"] for b in boxes] == ["LoRA", "full fine-tuning"]
    np.testing.assert_array_equal(decode(boxes[0]["x"]), lora_ms)
    np.testing.assert_array_equal(decode(boxes[1]["x"]), full_ms)
    assert boxes[0]["boxpoints"] == "all"
    assert [b["text"] for b in bars] == [["393 kB"], ["50.3 MB"]]
    assert spec(fig)["layout"]["font"]["size"] == FONT["size"]
