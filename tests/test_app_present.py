"""AppTest of the Present page: ten slides, their navigation, their URL, and the live controls."""
import pytest

from helpers import figures
from lora_app.config.present import SLIDES


@pytest.fixture
def at(app_test):
    app_test.run()
    app_test.switch_page("pages/present.py").run()
    assert not app_test.exception
    return app_test


def click(at, label):
    next(b for b in at.button if b.label == label).click().run()


def test_all_ten_slides_render_in_order_with_their_figures(at):
    titles, counts = [], []
    for n in range(1, len(SLIDES) + 1):
        assert not at.exception, n
        titles.append(at.title[0].value)
        counts.append(len(at.get("plotly_chart")))
        assert at.query_params["slide"] in (str(n), [str(n)])
        if n < len(SLIDES):
            click(at, "Next ▶")
    assert titles == [f"{n} · {t}" for n, (_, t) in enumerate(SLIDES, start=1)]
    # every slide but the equation and the counts has a live figure
    assert [n for n, c in enumerate(counts, start=1) if c == 0] == [2, 3]
    click(at, "◀ Previous")
    assert at.title[0].value.startswith("9 ·")


def test_presenter_view_has_no_sidebar_controls(at):
    assert len(at.sidebar.children) == 0
    assert not any(s.key == "n" for s in at.slider)


def test_the_rank_slider_on_a_slide_changes_its_figures(at):
    at.session_state["slide"] = 4
    at.run()
    assert "A_Q (5×2)" in figures(at)
    at.slider(key="r").set_value(3).run()
    assert "A_Q (5×3)" in figures(at) and "B_Q (3×3)" in figures(at)


def test_text_size_control_scales_the_slide_text(at):
    css = lambda: " ".join(h.proto.body for h in at.get("html"))  # noqa: E731
    import re
    root = lambda: float(re.search(r"html \{ font-size: ([\d.]+)px", css()).group(1))  # noqa: E731
    large = root()  # L on the 1280×800 a session has before its browser reports: 27 px × 800/1080
    assert large == pytest.approx(27 * 800 / 1080, abs=0.01)
    at.segmented_control(key="font").set_value("XL").run()
    assert root() == pytest.approx(33 * 800 / 1080, abs=0.01) and at.query_params["font"] in ("XL", ["XL"])


@pytest.mark.parametrize("slide,shown,notice", [("99", 10, "outside 1…10"), ("zero", 1, "not a slide number"),
                                                ("-2", 1, "outside")])
def test_a_tampered_slide_number_is_clamped_with_a_notice(app_test, slide, shown, notice):
    app_test.run()
    app_test.query_params["slide"] = slide
    app_test.switch_page("pages/present.py").run()
    assert not app_test.exception
    assert app_test.title[0].value.startswith(f"{shown} ·")
    assert any(notice in w.value for w in app_test.warning)
