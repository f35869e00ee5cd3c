"""lora_app.server.widget_gc: a widget that is gone leaves nothing behind in its session, and live widgets still work.

Streamlit 1.67 drops a stale widget's value but keeps its ``WidgetMetadata`` (and the callback, and
whatever the callback's closure holds) until the session ends. A slider whose maximum follows
another control gets a new id each time that control moves, so one session can pile up thousands.
"""
import gc
import weakref
from types import SimpleNamespace

from streamlit.runtime.state.session_state import SessionState
from streamlit.testing.v1 import AppTest

from helpers import open_view
from lora_app.server import widget_gc


def _moving_range_script():
    """r's slider has n as its maximum, so its id changes with every new n; its callback records r."""
    import streamlit as st

    from lora_app.server import widget_gc

    widget_gc.install()
    n = st.number_input("n", 2, 500, key="n")
    seen = st.session_state.setdefault("seen", [])
    payload = [0.0] * 10_000  # what a page's callback drags along (its globals: arrays, tensors, elements)

    def note():
        seen.append((st.session_state.r, len(payload)))
    st.slider("r", 1, int(n), key="r", on_change=note)


def _metadata(at: AppTest) -> dict:
    return at._session_state._state._new_widget_state.widget_metadata


def _id_keys(at: AppTest) -> dict:
    return at._session_state._state._key_id_mapper._id_key_mapping


def _move_n(at: AppTest, times: int) -> None:
    for n in range(3, 3 + times):
        at.number_input(key="n").set_value(n).run()
        assert not at.exception


def _drive(at: AppTest) -> list:
    """What a user sees along one path: r's value and the callback's record after each step."""
    at.run()
    _move_n(at, 40)
    seen = []
    for step in (lambda: at.slider(key="r").set_value(7), lambda: at.slider(key="r").set_value(9),
                 lambda: at.number_input(key="n").set_value(60), lambda: at.slider(key="r").set_value(30),
                 lambda: at.number_input(key="n").set_value(60)):
        step().run()
        assert not at.exception
        seen.append((at.slider(key="r").value, at.slider(key="r").max, list(at.session_state["seen"])))
    return seen


def test_a_moving_widget_leaves_no_metadata_behind(monkeypatch):
    at = AppTest.from_function(_moving_range_script, default_timeout=30)
    with_hook = _drive(at)
    meta = _metadata(at)
    assert len(meta) <= 3, f"{len(meta)} widget metadata entries after 45 runs (2 widgets drawn)"
    assert len(_id_keys(at)) <= 3, "element id to key entries of widgets that are gone are released too"
    assert with_hook[1] == (9, 42, [(7, 10_000), (9, 10_000)]), "values go through and callbacks fire, once each"
    assert with_hook[-1][2] == [(7, 10_000), (9, 10_000), (30, 10_000)]
    # and a user sees exactly what Streamlit alone shows (a slider whose range moved starts again at its
    # default: that is Streamlit's widget identity, not this hook)
    monkeypatch.setattr(SessionState, "_remove_stale_widgets", widget_gc._ORIGINAL)
    monkeypatch.setattr(widget_gc, "install", lambda: None)
    plain = AppTest.from_function(_moving_range_script, default_timeout=30)
    assert _drive(plain) == with_hook
    assert len(_metadata(plain)) >= 40, ("Streamlit alone keeps every stale widget's metadata; when it stops, "
                                         "lora_app.server.widget_gc can go")


def _meta(wid: str, fragment: str | None = None):
    return SimpleNamespace(id=wid, fragment_id=fragment)


def test_install_wraps_once_and_calls_streamlits_own_clean_up(monkeypatch):
    calls = []
    monkeypatch.setattr(widget_gc, "_ORIGINAL", lambda self, ids: calls.append(ids))
    monkeypatch.setattr(widget_gc, "get_script_run_ctx", lambda: SimpleNamespace(fragment_ids_this_run=None))
    monkeypatch.setattr(SessionState, "_remove_stale_widgets", SessionState._remove_stale_widgets)
    widget_gc.install()
    hooked = SessionState._remove_stale_widgets
    widget_gc.install()
    assert SessionState._remove_stale_widgets is hooked, "a second install does not wrap again"
    state = SessionState()
    state._new_widget_state.widget_metadata["$$ID-gone-x"] = _meta("$$ID-gone-x")
    SessionState._remove_stale_widgets(state, frozenset())
    assert calls == [frozenset()], "Streamlit's clean-up runs first, unchanged"
    assert "$$ID-gone-x" not in state._new_widget_state.widget_metadata
    # with no script run context Streamlit cleans nothing, and neither does the hook
    monkeypatch.setattr(widget_gc, "get_script_run_ctx", lambda: None)
    state._new_widget_state.widget_metadata["$$ID-gone-y"] = _meta("$$ID-gone-y")
    SessionState._remove_stale_widgets(state, frozenset())
    assert "$$ID-gone-y" in state._new_widget_state.widget_metadata


def test_only_what_streamlit_calls_stale_is_released():
    """Drawn this run (even with its value held under its key, as the sidebar's are), outside the fragment
    that ran, or with a value Streamlit still keeps: all keep their metadata."""
    state = SessionState()
    widgets = state._new_widget_state
    for wid, frag in (("$$ID-a-a", None), ("$$ID-b-b", None), ("$$ID-c-c", None), ("$$ID-d-d", None),
                      ("$$ID-e-e", "other"), ("$$ID-f-f", "running")):
        widgets.widget_metadata[wid] = _meta(wid, frag)
    widgets.states["$$ID-a-a"] = object()
    state._old_state["$$ID-b-b"] = 1
    assert widget_gc.release_stale(state, frozenset({"$$ID-d-d"})) == 3, "a full run: c, e and f are stale"
    for wid, frag in (("$$ID-e-e", "other"), ("$$ID-f-f", "running"), ("$$ID-c-c", None)):
        widgets.widget_metadata[wid] = _meta(wid, frag)
    assert widget_gc.release_stale(state, frozenset({"$$ID-d-d"}), ["running"]) == 1, "a fragment run: only f"
    assert set(widgets.widget_metadata) == {"$$ID-a-a", "$$ID-b-b", "$$ID-c-c", "$$ID-d-d", "$$ID-e-e"}


def test_the_explore_page_holds_one_run_not_every_run(app_test):
    """The clickable Q heatmaps get new ids when n changes; their callbacks held each run's page globals."""
    from lora_app.config.explore import ExploreConfig

    def live() -> int:  # in this whole process: what the worker's earlier tests left in caches counts too
        gc.collect()
        return sum(type(o) is ExploreConfig for o in gc.get_objects())

    at = app_test
    at.run()
    open_view(at, "explore", "q")
    before = live()
    runs = []
    for n in (2, 4, 3, 5, 6, 2, 4, 3, 5, 6, 2, 4):
        at.slider(key="n").set_value(n).run()
        assert not at.exception
        runs.append(len(_metadata(at)))
    assert max(runs[4:]) <= max(runs[:4]), f"metadata entries per run: {runs}"
    added = live() - before
    assert added <= 6, f"{added} more Explore configs alive after 12 runs of one session"


def test_release_keeps_no_reference_to_what_it_released():
    state = SessionState()

    class Meta:
        id, fragment_id = "$$ID-gone-x", None
    meta = Meta()
    state._new_widget_state.widget_metadata["$$ID-gone-x"] = meta
    ref = weakref.ref(meta)
    del meta
    widget_gc.release_stale(state, frozenset())
    gc.collect()
    assert ref() is None
