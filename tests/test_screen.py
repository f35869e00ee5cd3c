"""The browser's size report is untrusted input: anything it sends is bounded, and a page still draws."""
import pytest

from lora_app.widgets import notices, screen


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


# --- the key presses the browser counts (screen.take_keys) -------------------------------------------

def _keys(monkeypatch, state: dict, sent) -> list[str]:
    state["screen"] = {"keys": sent}
    monkeypatch.setattr(screen.st, "session_state", state)
    return screen.take_keys("training")


def test_every_press_counted_since_the_last_run_is_applied_once_and_in_order(monkeypatch):
    state: dict = {}
    assert _keys(monkeypatch, state, {"id": "abc", "n": 0, "log": ""}) == []  # the page's count starts
    assert _keys(monkeypatch, state, {"id": "abc", "n": 3, "log": "sns"}) == ["step", "next", "step"]
    assert _keys(monkeypatch, state, {"id": "abc", "n": 3, "log": "sns"}) == []  # the same message again: nothing
    assert _keys(monkeypatch, state, {"id": "abc", "n": 5, "log": "snsbp"}) == ["back", "play"]
    # presses for the slides are not the stepper's; they are counted as taken all the same
    assert _keys(monkeypatch, state, {"id": "abc", "n": 7, "log": "snsbpff"}) == []
    assert _keys(monkeypatch, state, {"id": "abc", "n": 8, "log": "snsbpffn"}) == ["next"]
    assert _keys(monkeypatch, state, {"id": "abc", "n": 10, "log": "snsbpffnhs"}) == ["reset", "step"]


def test_a_count_from_a_browser_this_session_has_not_seen_replays_nothing(monkeypatch):
    """A browser reconnecting to a fresh session sends its old count: that only sets where counting starts."""
    state: dict = {}
    assert _keys(monkeypatch, state, {"id": "old", "n": 40, "log": "s" * 40}) == []
    assert _keys(monkeypatch, state, {"id": "old", "n": 41, "log": "s" * 40 + "n"}) == ["next"]
    assert _keys(monkeypatch, state, {"id": "new", "n": 0, "log": ""}) == []
    assert _keys(monkeypatch, state, {"id": "new", "n": 1, "log": "p"}) == ["play"]


def test_more_presses_than_the_log_holds_apply_the_log(monkeypatch):
    state: dict = {}
    _keys(monkeypatch, state, {"id": "abc", "n": 0, "log": ""})
    assert _keys(monkeypatch, state, {"id": "abc", "n": 100, "log": "s" * 64}) == ["step"] * 64


@pytest.mark.parametrize("sent", [
    None, "keys", [1, 2], {}, {"id": "abc"}, {"id": 5, "n": 1, "log": "s"}, {"id": "", "n": 1, "log": "s"},
    {"id": "x" * 41, "n": 1, "log": "s"}, {"id": "abc", "n": "9", "log": "s"}, {"id": "abc", "n": True, "log": "s"},
    {"id": "abc", "n": 1.5, "log": "s"}, {"id": "abc", "n": -1, "log": "s"}, {"id": "abc", "n": 10 ** 12, "log": "s"},
    {"id": "abc", "n": 2, "log": ["s", "s"]}, {"id": "abc", "n": 2, "log": "s" * 65},
])
def test_a_tampered_key_count_moves_nothing(monkeypatch, sent):
    state: dict = {}
    _keys(monkeypatch, state, {"id": "abc", "n": 0, "log": ""})
    assert _keys(monkeypatch, state, sent) == []
    assert _keys(monkeypatch, state, {"id": "abc", "n": 1, "log": "x<script>"[:1]}) == []  # an unknown letter moves nothing


def test_the_stepper_applies_the_counted_presses_before_its_widgets(app_test):
    """AppTest: presses counted in the browser move the stepper as its buttons would, one move per press."""
    at = app_test.run()
    at = at.switch_page("pages/training.py").run()
    at.session_state["screen"] = {"keys": {"id": "t1", "n": 0, "log": ""}}
    at = at.run()
    at.session_state["screen"] = {"keys": {"id": "t1", "n": 7, "log": "sssssnn"}}
    at = at.run()
    assert not at.exception
    assert (at.session_state["step"], at.session_state["stage"]) == (6, "backward")
    at = at.run()  # a rerun with the same count moves nothing
    assert (at.session_state["step"], at.session_state["stage"]) == (6, "backward")


@pytest.mark.parametrize("sent,acted", [
    ({"id": "new", "n": 0, "log": ""}, False),    # a page announces where its count starts: not the user
    ({"id": "abc", "n": 2, "log": "ss"}, False),  # the same count again (a message sent twice, the safety net)
    ({"id": "abc", "n": 3, "log": "sss"}, True),  # a press: the user acting, notices go
])
def test_only_a_key_press_counts_as_the_user_acting(monkeypatch, sent, acted):
    monkeypatch.setattr(screen.st, "session_state", {"screen": {"keys": sent}})
    seen = notices.Seen("training", {}, ("abc", 2), frozenset())
    now = notices.Seen("training", {}, screen.key_count(), frozenset())
    assert notices.user_acted(seen, now) is acted


@pytest.mark.parametrize("sent", [None, "keys", {"id": "abc", "n": -1, "log": ""}, {"id": "abc", "n": 1, "log": "s" * 65},
                                  {"id": "", "n": 1, "log": "s"}, {"id": "abc", "n": True, "log": "s"}])
def test_a_tampered_key_count_is_no_count(monkeypatch, sent):
    monkeypatch.setattr(screen.st, "session_state", {"screen": {"keys": sent}})
    assert screen.key_count() is None


def test_the_key_handler_is_one_script_in_the_page_and_in_the_reporter():
    """listen() and the reporter install the same handler, once a window (whichever loads first)."""
    assert screen._KEYS_JS in screen._LISTEN and screen._KEYS_JS in screen._JS
    assert "</" not in screen._KEYS_JS  # a plain script ends at the first "</"
    assert "if (lora.keys) return;" in screen._KEYS_JS
