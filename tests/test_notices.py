"""One way to tell the user (lora_app/widgets/notices.py): a notice stays until the user acts, and only then goes.

The unit tests give ``user_acted`` two snapshots; the AppTests open a page with a bad link, rerun it
as the browser does without the user (its size report, the key log sent again, a rerun that changes
nothing) and then act as the user (a widget, a key press, another page).
"""
import math

import pytest

from lora_app.widgets.notices import Seen, user_acted


def seen(values=None, page="explore", keys=("abc", 2), rose=frozenset()):
    return Seen(page, dict(values or {}), keys, frozenset(rose))


# --- user_acted: what counts as the user acting ------------------------------------------------------

def test_a_sessions_first_run_is_not_an_act():
    assert not user_acted(None, seen({"r": 2}))


@pytest.mark.parametrize("before,after", [
    ({"r": 2, "d": 5}, {"r": 2, "d": 5}),
    ({"alpha": math.nan}, {"alpha": math.nan}),                       # NaN is itself, not a change
    ({"targets": ["q", "v"]}, {"targets": ["q", "v"]}),               # an equal value in a new object
    ({"r": 2}, {"r": 2, "view_explore": "1 · The matrices"}),         # a widget drawn for the first time
    ({"r": 2, "edit_W_0": {"edited_rows": {}}}, {"r": 2}),            # a table replaced by a fresh one
])
def test_nothing_the_user_changed_is_no_act(before, after):
    assert not user_acted(seen(before), seen(after))


@pytest.mark.parametrize("before,after", [
    ({"r": 2}, {"r": 3}),
    ({"lora_q": True}, {"lora_q": False}),                            # a box unticked
    ({"view_explore": "1 · The matrices"}, {"view_explore": "3 · Q"}),
    ({"edit_W_0": {"edited_rows": {}}}, {"edit_W_0": {"edited_rows": {0: {"1": "2"}}}}),
    ({"bench_go": False}, {"bench_go": True}),                         # a button pressed
])
def test_a_changed_value_is_an_act(before, after):
    assert user_acted(seen(before), seen(after))


def test_a_buttons_trigger_falling_back_is_no_act():
    """A button is True in the run of its click only: the next run's False is not the user."""
    assert not user_acted(seen({"bench_go": True}, rose={"bench_go"}), seen({"bench_go": False}))


def test_another_page_is_an_act():
    assert user_acted(seen(page="explore"), seen(page="training"))


@pytest.mark.parametrize("keys,acted", [
    (("abc", 2), False),   # the same count sent again (the safety net)
    (("new", 0), False),   # a page announcing where its count starts
    (None, False),         # no count
    (("abc", 3), True),    # a press
])
def test_a_key_press_is_an_act(keys, acted):
    assert user_acted(seen(keys=("abc", 2)), seen(keys=keys)) is acted


# --- the pages: a notice stays through the reruns that are not the user, and goes when they act --------

def warnings(at) -> str:
    return " ".join(w.value for w in at.warning)


def rerun_as_the_browser(at, i: int):
    """A rerun the user did not ask for: the first a size report, the others the same messages sent again."""
    state = dict(at.session_state["screen"]) if "screen" in at.session_state else {}
    if i == 0:
        state["size"] = {"vw": 1280, "vh": 800, "main": 1000}
    at.session_state["screen"] = state
    return at.run()


@pytest.mark.parametrize("page,query,words", [
    ("pages/explore.py", {"r": "999"}, "r = `999`"),
    ("pages/present.py", {"slide": "0"}, "slide = `0`"),
    ("pages/explore.py", {"view": "nope"}, "view = `nope` is not a part of this page"),
    ("pages/rank.py", {"decay": "lots"}, "decay = `lots`"),
])
def test_a_links_notice_stays_until_the_user_acts(app_test, page, query, words):
    if page == "pages/explore.py":  # the first page: its link is read in the session's first run
        app_test.query_params.update(query)
        at = app_test.run()
    else:  # another page's own values are read when it first opens (AppTest can only switch after a run)
        at = app_test.run()
        at.query_params.update(query)
        at = at.switch_page(page).run()
    assert words in warnings(at)
    for i in range(3):
        at = rerun_as_the_browser(at, i)
        assert not at.exception
        assert words in warnings(at), i
    at.session_state["seed"] = at.session_state["seed"] + 1  # the user acts
    at = at.run()
    assert words not in warnings(at)


def test_a_note_said_below_the_top_is_drawn_at_the_top_and_stays(app_test):
    """Attention's clamp note is said after the controls are read, and drawn with the other notices."""
    app_test.query_params.update({"k": "1024"})
    at = app_test.run()
    at.query_params.update({"k": "1024", "heads": "4"})
    at = at.switch_page("pages/attention.py").run()
    notes = [i.value for i in at.info if "heads of width k = 1024" in i.value]
    assert notes and "using 1." in notes[0]
    order = [getattr(e, "value", None) for e in at.main]  # depth first: the page from top to bottom
    assert order.index(notes[0]) < order.index("Put an adapter on"), "the note is drawn at the top of the page"
    for i in range(3):
        at = rerun_as_the_browser(at, i)
        assert notes[0] in [n.value for n in at.info], i
    at.toggle(key="causal").set_value(True).run()
    assert notes[0] not in [n.value for n in at.info]


def test_a_key_press_is_the_user_acting(app_test):
    at = app_test.run()
    at.query_params.update({"lr": "-1"})
    at = at.switch_page("pages/training.py").run()
    at.session_state["screen"] = {"keys": {"id": "t1", "n": 0, "log": ""}}  # the page announces its count
    at = at.run()
    assert "lr = `-1`" in warnings(at)
    at.session_state["screen"] = {"keys": {"id": "t1", "n": 0, "log": ""}}  # sent again: not a press
    at = at.run()
    assert "lr = `-1`" in warnings(at)
    at.session_state["screen"] = {"keys": {"id": "t1", "n": 1, "log": "s"}}  # N pressed
    at = at.run()
    assert at.session_state["step"] == 2
    assert "lr = `-1`" not in warnings(at)


def test_another_page_drops_the_last_pages_notices(app_test):
    app_test.query_params.update({"r": "999"})
    at = app_test.run()
    assert "r = `999`" in warnings(at)
    at = at.switch_page("pages/scale.py").run()
    assert "r = `999`" not in warnings(at)


def test_a_refused_edit_stays_through_the_reruns_that_follow_and_goes_at_the_next_act(app_test):
    at = app_test.run()
    at.session_state["explore_edit"] = True  # the tables are drawn inside the open expander
    at = at.run()
    key = f"edit_W_{at.session_state['editor_version'].get('W', 0)}"
    at.session_state[key] = {"edited_rows": {2: {"3": "abc"}}, "added_rows": [], "deleted_rows": []}
    at = at.run()
    refused = [e.value for e in at.error if "W_Q[3, 3]" in e.value]
    assert refused and "`abc` is not a number" in refused[0]
    for i in range(3):  # the fresh table registering, the size report
        at = rerun_as_the_browser(at, i)
        assert refused[0] in [e.value for e in at.error], i
    at.session_state["seed"] = at.session_state["seed"] + 1
    at = at.run()
    assert refused[0] not in [e.value for e in at.error]


def test_a_refused_setting_stays_until_the_user_acts(app_test):
    at = app_test.run()
    at = at.switch_page("pages/training.py").run()
    at.number_input(key="lr").set_value(-0.5).run()
    refused = [e.value for e in at.error]
    assert len(refused) == 1 and refused[0].startswith("lr = `-0.5` is outside")
    for i in range(3):
        at = rerun_as_the_browser(at, i)
        assert [e.value for e in at.error] == refused, i
    at.number_input(key="wd").set_value(0.02).run()
    assert not at.error


def _small_page():
    """A page of its own: its top, a slider, and what it is told to say after the top was drawn."""
    import streamlit as st

    from lora_app.widgets import notices

    st.title("a page")
    notices.show("small")
    st.slider("x", 0, 5, key="x")
    for text in st.session_state.pop("_say", []):
        notices.add(text)
    notices.close()  # app.py's screen.report() does this at the end of every run


def test_words_said_late_join_the_top_once_and_stay_until_the_user_acts():
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_function(_small_page).run()
    assert not at.warning
    at.session_state["_say"] = ["once", "once", "twice"]
    at = at.run()
    assert [w.value for w in at.warning] == ["once", "twice"]
    nodes = list(at.main)  # depth first: the page from top to bottom
    said = next(i for i, e in enumerate(nodes) if getattr(e, "value", None) == "once")
    slider = next(i for i, e in enumerate(nodes) if getattr(e, "label", None) == "x")
    assert said < slider, "drawn at the top, above the slider"
    at.session_state["_say"] = ["twice"]  # said again in a run that is not the user's: still one
    at = at.run()
    assert [w.value for w in at.warning] == ["once", "twice"]
    at = at.run()
    assert [w.value for w in at.warning] == ["once", "twice"]
    at.slider(key="x").set_value(3).run()
    assert not at.warning
