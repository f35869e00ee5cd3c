"""Figure builders and LaTeX: pure functions, checked on what they put in the figure."""
import numpy as np
import pytest

from lora_app import figures
from lora_app.text import latex
from lora_core import lora_forward, seed_example


def seed_arrays():
    ex = seed_example()
    return [t.numpy() for t in ex]


def test_heatmap_carries_values_shape_and_a_zero_centred_scale():
    X, W, A, B = seed_arrays()
    fig = figures.matrix_heatmap(A, "A_Q", role="trainable", zmax=0.3)
    hm = fig.data[0]
    np.testing.assert_array_equal(hm.z, A)
    assert (hm.zmin, hm.zmid, hm.zmax) == (-0.3, 0, 0.3)
    assert "A_Q (5×2)" in fig.layout.title.text and "trainable" in fig.layout.title.subtitle.text
    assert list(fig.data[1].text) == [f"{v:.1f}" for v in A.ravel()]  # the seed's numbers, as printed
    assert list(hm.x) == [1, 2] and list(hm.y) == [1, 2, 3, 4, 5]


def test_shared_range_makes_equal_values_equal_colours():
    X, W, A, B = seed_arrays()
    out = lora_forward(*seed_example())
    z = figures.symmetric_range(out.base.numpy(), out.q.numpy())
    assert z == pytest.approx(0.449)
    f1 = figures.matrix_heatmap(out.base.numpy(), "Q", zmax=z)
    f2 = figures.matrix_heatmap(out.q.numpy(), "Q'", zmax=z)
    assert (f1.data[0].zmin, f1.data[0].zmax) == (f2.data[0].zmin, f2.data[0].zmax)


def test_decimals_show_the_seed_numbers_exactly():
    out = lora_forward(*seed_example())
    assert figures.display_decimals(seed_example().X.numpy()) == 1
    assert figures.display_decimals(out.base.numpy()) == 2
    assert figures.display_decimals(out.q.numpy()) == 3


def test_large_matrices_drop_text_and_are_downsampled():
    M = np.random.default_rng(0).normal(size=(40, 20))
    fig = figures.matrix_heatmap(M, "M")
    assert len(fig.data) == 1 and "hover" in fig.layout.title.subtitle.text
    big = np.arange(1024 * 300, dtype=float).reshape(1024, 300)
    fig = figures.matrix_heatmap(big, "W")
    z = np.asarray(fig.data[0].z)
    assert max(z.shape) <= figures.DISPLAY_MAX_SIDE
    assert "means of 8×8 blocks" in fig.layout.title.subtitle.text
    assert "(1024×300)" in fig.layout.title.text + fig.layout.title.subtitle.text
    assert z[0, 0] == pytest.approx(big[:8, :8].mean())


def test_clickable_heatmap_has_a_marker_per_cell():
    fig = figures.matrix_heatmap(np.ones((3, 4)), "Q", clickable=True, cell=(1, 2))
    assert len(fig.data) == 2 and len(fig.data[1].x) == 12
    assert any(s.x0 == 2.5 and s.y0 == 1.5 for s in fig.layout.shapes)


def test_cell_breakdown_sums_to_q():
    X, W, A, B = seed_arrays()
    lines = latex.cell_breakdown(X, W, A, B, 1.0, 1, 1)
    assert lines[0].endswith("= 0.350")
    assert lines[-1] == r"Q_{2,2} = 0.350 + 0.099 = 0.449"


def test_equations_print_the_seed_matrices():
    X, W, A, B = seed_arrays()
    out = lora_forward(*seed_example())
    eq = latex.forward_equation(X, W + A @ B, out.q.numpy())
    assert r"0.161 & 0.190 & 0.306" in eq and r"0.1 & 0.3 & 0.5 & 0.2 & 0.0" in eq
    assert latex.num(-0.25, 2) == "−0.25" and latex.num(-0.0001, 2) == "0.00"


@pytest.mark.parametrize("kwargs", [
    {}, {"role": "frozen"}, {"role": "trainable", "show_scale": True}, {"clickable": True, "cell": (1, 2)},
    {"rows": (0,), "cols": (1,)}, {"decimals": 2, "text_size": 12, "cell_px": 40},
    {"axis_titles": ("key", "query"), "scale": 1.5},
])
def test_every_heatmap_passes_plotly_validation(kwargs):
    """The builders skip validation for speed, so check here that plotly accepts every property."""
    import plotly.graph_objects as go
    fig = figures.matrix_heatmap(np.arange(12, dtype=float).reshape(3, 4) - 5, "M", **kwargs)
    go.Figure(fig.to_dict())  # raises ValueError on any invalid property


def test_loss_curve_marks_the_step_and_switches_to_log():
    import plotly.graph_objects as go
    losses = np.geomspace(1.0, 1e-8, 50)
    fig = figures.loss_curve(losses, losses * 2, 10, lora_count=16, full_count=15, floor=1e-3)
    go.Figure(fig.to_dict())
    assert fig.layout.yaxis.type == "log"
    assert [t.name for t in fig.data] == ["full fine-tuning: 15 trained numbers", "LoRA: 16 trained numbers", "step 10"]
    assert fig.data[2].y[0] == losses[9]
    flat = figures.loss_curve(np.linspace(1, 0.5, 10), None, 1, lora_count=1, full_count=2)
    assert flat.layout.yaxis.type == "linear"


def test_tiny_values_are_written_with_exponents():
    fig = figures.matrix_heatmap(np.array([[1e-6, 2.5e-7]]), "v")
    assert list(fig.data[1].text) == ["1e−6", "2.5e−7"]


def test_figures_carry_a_lean_copy_of_the_apps_theme():
    """The template is cut to what the figures use, keeping the theme's own values (so dark mode still restyles)."""
    import json

    import plotly.io as pio
    import streamlit  # noqa: F401  (sets Streamlit's theme as plotly's default template, as in the app)

    from lora_app.figures.base import lean_template
    assert pio.templates.default == "streamlit"
    fig = figures.matrix_heatmap(np.eye(3), "I")
    template = fig.to_plotly_json()["layout"]["template"]
    full = pio.templates["streamlit"].to_plotly_json()
    assert template["layout"] == full["layout"]  # the theme's colours, as they are
    assert template["data"]["heatmap"] == full["data"]["heatmap"] and template["data"]["scatter"] == full["data"]["scatter"]
    assert set(template["data"]) == {"heatmap", "scatter", "bar"} & set(full["data"])
    assert len(json.dumps(template)) < 0.6 * len(json.dumps(full))
    lean_template()["layout"]["colorway"][0] = "red"  # each figure gets its own copy
    assert lean_template()["layout"]["colorway"] == full["layout"]["colorway"]
