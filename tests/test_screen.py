"""The browser's size report is untrusted input: anything it sends is bounded, and a page still draws."""
import pytest

from lora_app import screen


@pytest.mark.parametrize("sent", [
    None, {}, {"size": None}, {"size": [1, 2]}, "size", {"size": {"vw": "abc", "vh": [1], "main": {"x": 1}}},
    {"size": {"vw": float("nan"), "vh": float("inf"), "main": -5}},
    {"size": {"vw": 10 ** 12, "vh": 10 ** 12, "main": 10 ** 12}},
    {"size": {"vw": "<script>alert(1)</script>", "vh": "1e400", "main": "0x10"}},
])
def test_a_tampered_size_report_falls_back_to_bounded_numbers(monkeypatch, sent):
    monkeypatch.setattr(screen.st, "session_state", {"screen": sent})
    s = screen.current()
    assert all(isinstance(v, int) and 240 <= v <= 8000 for v in s)
    assert 200 <= s.content_width() <= 8000


@pytest.mark.parametrize("page", ["pages/explore.py", "pages/present.py", "pages/training.py"])
def test_a_page_draws_whatever_size_the_session_holds(app_test, page):
    app_test.session_state["screen"] = {"size": {"vw": "nan", "vh": 10 ** 9, "main": -1}}
    at = app_test.run()
    at = at.switch_page(page).run()
    assert not at.exception
    assert at.get("plotly_chart")
