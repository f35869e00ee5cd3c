"""Widget messages from the browser are checked before Streamlit uses them.

A widget's value arrives from the browser as a protobuf ``WidgetState``, and Streamlit turns it back
into a Python value with the widget's deserializer *before the page script runs*: while it looks for
changed widgets to call their callbacks. A forged message (text where a table edit's JSON belongs,
a list where a select box sends one index, a value of the wrong kind) then raises there, outside any
code of ours, and the page shows Streamlit's exception box.

:func:`install` wraps ``SessionState.set_widgets_from_proto``, the one place every incoming widget
state passes through, so that each state is first read the way Streamlit will read it: it must have
the value kind the widget registered, its deserializer must accept it, and its serializer must accept
the result (Streamlit re-serializes values when the widget registers again), and a number or a
choice must read back as what was sent: Streamlit silently resets an out-of-range slider or number
input to its default, which would change a setting without a word. A state that fails is
dropped, so the widget keeps its last good value, and :func:`take_refusals` hands the page the keys
of the widgets whose message was refused, for a notice. Values that read well but are out of range
(a slider beyond its max, an infinite number) are the pages' configs' job: ``lora_app.config``.

Pinned to streamlit 1.67.0 (requirements.txt); ``tests/test_forged.py`` fails if this hook stops
being called.
"""
from __future__ import annotations

import logging

from streamlit.elements.lib.file_uploader_utils import enforce_filename_restriction
from streamlit.runtime.state.common import unpack_widget_state_value
from streamlit.runtime.state.session_state import SessionState

REFUSED_KEY = "_refused_widget_messages"
_LOGGER = logging.getLogger(__name__)
# kinds whose serialized form is canonical, so a real message reads back exactly as it was sent
# (text and JSON are not: the same table edit can be written with other spaces or key order)
_NEVER_EMPTY = ("double_value", "int_value", "double_array_value")
_ROUND_TRIP_KINDS = ("double_value", "int_value", "bool_value", "double_array_value", "int_array_value",
                     "string_array_value")


def widget_name(widget_id: str) -> str:
    """The user key inside a widget id (``$$ID-<hash>-<key>``), or a generic name for unkeyed widgets."""
    key = widget_id.split("-", 2)[2] if widget_id.count("-") >= 2 else ""
    return key if key and key != "None" else "a control"


def check_state(metadata, state) -> None:
    """Raise if Streamlit could not read ``state`` for this widget; nothing is changed."""
    kind = state.WhichOneof("value")
    if kind is None:
        if metadata.value_type in _NEVER_EMPTY:
            # a number input or slider of this app always has a value; an empty one would read as its
            # default (0 for a number input: a valid β1 or λ), a silent change
            raise ValueError("sent no value for a control that always has one")
        return  # a cleared value (an emptied upload, a select with nothing chosen): every deserializer takes None
    if kind == "file_uploader_state_value" == metadata.value_type:
        _check_upload_names(metadata, state)
        return
    if metadata.value_type and _kind(kind) != _kind(metadata.value_type):
        raise TypeError(f"sent {kind} where the widget sends {metadata.value_type}")
    sent = unpack_widget_state_value(state)
    back = metadata.serializer(metadata.deserializer(sent))
    if kind in _ROUND_TRIP_KINDS and not _same(back, sent):
        # the widget read it as something else: Streamlit resets an out-of-range slider or number to its
        # default, silently; a message from the real widget always reads back as itself
        raise ValueError("the widget would read it as another value")


def _check_upload_names(metadata, state) -> None:
    """An upload's file names against the uploader's types, as Streamlit would check them, without reading files.

    The browser filters by type; a forged request need not, and Streamlit's own check then raises
    before any code of the page runs. The deserializer itself is not called here: it reads the upload.
    """
    allowed = getattr(getattr(metadata.deserializer, "__self__", None), "allowed_types", None)
    if allowed:
        for info in state.file_uploader_state_value.uploaded_file_info:
            enforce_filename_restriction(info.name, allowed)


def _kind(value_type: str) -> str:
    # a number input registers double_value and the browser sends an integer one's value as int_value
    return "number" if value_type in ("int_value", "double_value") else value_type


def _same(back, sent) -> bool:
    if isinstance(back, (list, tuple)) or hasattr(sent, "__len__") and not isinstance(sent, (str, bytes)):
        try:
            return list(back) == list(sent)
        except TypeError:
            return False
    return back == sent


def _checked(session_state: SessionState, widget_states):
    known = session_state._new_widget_state.widget_metadata
    refused = []
    for state in list(widget_states.widgets):
        metadata = known.get(state.id)
        if metadata is None or metadata.value_type == "chat_input_value":
            continue
        try:
            check_state(metadata, state)
        except Exception as exc:  # noqa: BLE001 - any failure of Streamlit's own reading means: refuse it
            _LOGGER.warning("refused a widget message for %s: %s: %.200s", widget_name(state.id), type(exc).__name__, exc)
            refused.append(widget_name(state.id))
            widget_states.widgets.remove(state)
    if refused:
        pending = session_state._new_session_state.get(REFUSED_KEY) or []
        session_state._new_session_state[REFUSED_KEY] = [*pending, *refused]
    return widget_states


def install() -> None:
    """Wrap ``SessionState.set_widgets_from_proto`` once per process (app.py calls this on every run)."""
    original = SessionState.set_widgets_from_proto
    if getattr(original, "_lora_guard", False):
        return

    def set_widgets_from_proto(self, widget_states):
        # in place: Streamlit also reads this message later in the same rerun (which widgets it touched)
        return original(self, _checked(self, widget_states))

    set_widgets_from_proto._lora_guard = True
    SessionState.set_widgets_from_proto = set_widgets_from_proto


def take_refusals(session_state) -> list[str]:
    """The keys of widgets whose message was refused since the last call, each once."""
    refused = session_state.get(REFUSED_KEY) or []
    if refused:
        session_state[REFUSED_KEY] = []
    return list(dict.fromkeys(refused))
