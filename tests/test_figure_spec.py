"""The heatmaps reach st.plotly_chart as plain dicts (figures.base.FigureSpec), skipping plotly's constructor.

What the browser gets must not change: for 108 heatmap variants (shapes from 1×1 to 200×10, roles,
highlights, clickable cells, colour bars, tick labels, slide scale, NaN), the chart JSON sent through
the FigureSpec path is byte for byte the JSON of the same figure built as a go.Figure.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

from bench_rerun_cost import check_identical


def test_the_prebuilt_heatmap_json_is_plotlys_byte_for_byte():
    assert check_identical() == 108
