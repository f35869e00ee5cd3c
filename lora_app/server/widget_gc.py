"""A widget that is gone is forgotten whole: its metadata and callback too, not only its value.

At the end of every run Streamlit drops the state of each widget the run did not draw, but
Streamlit 1.67 keeps that widget's ``WidgetMetadata`` in the session for as long as the session
lives. A widget's id changes with its parameters, so every new figure under a clickable heatmap (a
plotly chart with ``on_select``) and every slider whose range moved leaves one more entry behind.
The entry holds the widget's callback, and a callback defined in a page holds that page's globals:
the run's config, arrays, tensors and element tree. Measured with ``bench/class_load.py`` before this
module: a class of 50 grew the server by about 10 MiB a minute, and an Explore session kept every
run it had ever drawn (``docs/PERFORMANCE.md``, "A class on one server").

:func:`install` wraps ``SessionState._remove_stale_widgets`` once per process so that, after
Streamlit's own clean-up, the metadata of every widget that Streamlit's own rule calls stale (not
drawn this run, not outside the fragments this run ran) is released, unless Streamlit still keeps its
value, and so are the element-id-to-key entries that no key maps to any more.

Pinned to streamlit 1.67.0 (requirements.txt); ``tests/test_widget_gc.py`` fails if Streamlit's
clean-up stops being called here, and says so when Streamlit starts releasing stale metadata itself.
"""
from __future__ import annotations

from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx
from streamlit.runtime.state.session_state import SessionState, _is_stale_widget

_ORIGINAL = SessionState._remove_stale_widgets


def release_stale(session_state: SessionState, active_widget_ids: frozenset[str],
                  fragment_ids_this_run: list[str] | None = None) -> int:
    """Drop the metadata (and id-to-key entries) of the widgets Streamlit just found stale; return how many.

    Stale is Streamlit's own rule (``_is_stale_widget``): not drawn this run, and not outside the
    fragments this run ran. A widget whose value Streamlit still keeps is left alone.
    """
    widgets = session_state._new_widget_state
    kept = set(widgets.states) | set(session_state._old_state)
    stale = [wid for wid, meta in widgets.widget_metadata.items()
             if wid not in kept and _is_stale_widget(meta, active_widget_ids, fragment_ids_this_run)]
    for wid in stale:
        del widgets.widget_metadata[wid]
    mapper = session_state._key_id_mapper
    current = set(mapper._key_id_mapping.values())
    for wid in [w for w in mapper._id_key_mapping if w not in current and w not in kept and w not in active_widget_ids]:
        del mapper._id_key_mapping[wid]
    return len(stale)


def install() -> None:
    """Release stale widgets' metadata after each run's clean-up (app.py calls this on every run)."""
    if getattr(SessionState._remove_stale_widgets, "_lora_widget_gc", False):
        return

    def _remove_stale_widgets(self, active_widget_ids):
        _ORIGINAL(self, active_widget_ids)
        ctx = get_script_run_ctx()
        if ctx is not None:  # Streamlit's own clean-up does nothing without one either
            release_stale(self, active_widget_ids, ctx.fragment_ids_this_run)

    _remove_stale_widgets._lora_widget_gc = True
    SessionState._remove_stale_widgets = _remove_stale_widgets
