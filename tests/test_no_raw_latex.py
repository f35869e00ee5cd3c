"""No raw LaTeX outside KaTeX: every text a page shows, across all its parts and a sweep of settings.

Numbers in sentences are text ("9.442 × 10⁻⁴"); LaTeX belongs in st.latex or between dollar signs,
where KaTeX renders it. A LaTeX command anywhere else reaches the screen as "\\times10^{-4}". This
scans markdown, captions, notices, metrics, titles and every figure's titles and annotations (plotly
renders no LaTeX at all) on every page and part, at several settings and, on Training, every stage
at steps 1, 38 and the last.
"""
import json
import re

import pytest

from helpers import _sections, open_view

LATEX = re.compile(r"\\[A-Za-z]+|\^\{|_\{|\\[,;!]")
CODE = re.compile(r"(`+)(?:(?!\1).)*\1")       # echoed values sit in code spans: not text to judge
MATH = re.compile(r"\$\$.*?\$\$|\$[^$]+\$", re.S)  # what KaTeX renders

TEXT_KINDS = ("markdown", "caption", "info", "warning", "error", "success", "title", "header", "subheader",
              "metric", "expander", "tab", "button", "toast", "text")


def outside_katex(text: str) -> list[str]:
    bare = MATH.sub(" ", CODE.sub(" ", text))
    return LATEX.findall(bare)


def figure_texts(spec: dict) -> list[str]:
    out = []

    def walk(node, key=""):
        if isinstance(node, dict):
            for k, v in node.items():
                walk(v, k)
        elif isinstance(node, list):
            for v in node:
                walk(v, key)
        elif isinstance(node, str) and key in ("text", "title", "name", "hovertemplate", "texttemplate"):
            out.append(node)

    layout = spec.get("layout", {})
    walk(layout)
    for trace in spec.get("data", []):
        walk({k: v for k, v in trace.items() if k in ("name", "hovertemplate", "texttemplate")})
    return out


def shown_texts(at) -> list[str]:
    texts = []
    for kind in TEXT_KINDS:
        for el in at.get(kind):
            for attr in ("value", "label", "body"):
                v = getattr(el, attr, None) if attr != "body" else getattr(getattr(el, "proto", None), "body", None)
                if isinstance(v, str):
                    texts.append(v)
    for chart in at.get("plotly_chart"):
        texts += figure_texts(json.loads(chart.proto.spec))
    return texts


def leftovers(at) -> list[tuple[str, list[str]]]:
    assert not at.exception, at.exception[0].message
    return [(t[:120], found) for t in shown_texts(at) if (found := outside_katex(t))]


def sweep(at, page: str):
    """Yield after each part of the page has been drawn."""
    for slug in _sections(page) if page in ("explore", "training", "attention", "rank") else [None]:
        if slug:
            open_view(at, page, slug)
        yield slug


SETTINGS = {
    "the blog's example": {},
    "PEFT init, larger": {"preset": "peft", "n": 6, "d": 12, "k": 8, "r": 4, "alpha": 8.0},
    "random, rank 1": {"preset": "random", "seed": 7, "d": 24, "k": 16, "r": 1, "rslora": True},
}


@pytest.mark.parametrize("setting", SETTINGS)
@pytest.mark.parametrize("page", ["explore", "attention", "rank", "scale", "present"])
def test_no_page_shows_raw_latex(app_test, page, setting):
    at = app_test
    at.query_params.update({k: str(v) for k, v in SETTINGS[setting].items()})
    at.run()
    if page != "explore":
        at.switch_page(f"pages/{page}.py").run()
    found = []
    if page == "present":
        from lora_app.config.present import SLIDES
        for slide in range(1, len(SLIDES) + 1):
            at.session_state["slide"] = slide
            at.run()
            found += [(f"slide {slide}",) + f for f in leftovers(at)]
    for slug in sweep(at, page):
        found += [(slug,) + f for f in leftovers(at)]
    assert not found, found[:5]


@pytest.mark.parametrize("init", ["seed", "peft"])
def test_no_training_stage_shows_raw_latex_at_any_step(app_test, init):
    at = app_test.run()
    at.switch_page("pages/training.py").run()
    at.session_state["init"] = init
    at.run()
    open_view(at, "training", "step")
    found = []
    last = int(at.session_state["steps"])
    for step in (1, 38, last):
        for stage in ("forward", "loss", "backward", "adamw", "update"):
            at.session_state["step"], at.session_state["stage"] = step, stage
            at.run()
            found += [(step, stage) + f for f in leftovers(at)]
    for slug in ("loss", "task"):
        open_view(at, "training", slug)
        found += [(slug,) + f for f in leftovers(at)]
    assert not found, found[:5]


def test_the_scan_finds_what_it_looks_for():
    """The scanner itself: raw commands are found, KaTeX and code spans are not."""
    assert outside_katex("after it 9.442\\times10^{-4}") == ["\\times", "^{"]
    assert outside_katex("L = $\\frac{1}{n}$ and `\\frac` and $$x_{1}$$") == []
    assert outside_katex("escaped \\* and \\_ stay") == []
