"""The example's controls and each page's own, read from the URL once and written back to it after each run."""
from __future__ import annotations

import streamlit as st

from ..config import (
    MATRIX_LABELS,
    URL_KEYS,
    ExploreConfig,
    fields,
    sanitize,
)
from .notices import add as add_notice


def load_url_state() -> None:
    """On a session's first run, take the controls from the URL; later runs keep the session's own state."""
    if st.session_state.get("_url_loaded"):
        return
    values, notices = sanitize(st.query_params.to_dict())
    st.session_state.update(values)
    st.session_state["_url_loaded"] = True
    for notice in notices:
        add_notice(notice)



def validate_controls() -> None:
    # widget limits live in the browser; a tampered message or a shrunken d can still bring bad values
    current = {key: st.session_state[key] for key in URL_KEYS if key in st.session_state}
    values, notices = sanitize(current)
    for key, value in values.items():
        if st.session_state.get(key) != value:
            st.session_state[key] = value
    for notice in notices:
        add_notice(notice)



def recheck(page: str, fields_table) -> None:
    """Check the page's widget values again on every run (fields.recheck): a value a forged message brought, or
    one that a change of the example made invalid, gives way to the last good one, with a notice."""
    good = st.session_state.setdefault(f"_good_{page}", {})
    current = {f.name: st.session_state[f.name] for f in fields_table if f.name in st.session_state}
    values, notices = fields.recheck(current, good, fields_table)
    for key, value in values.items():
        if st.session_state.get(key) != value:
            st.session_state[key] = value
    good.update(values)
    for notice in notices:
        add_notice(notice)



def current_config() -> ExploreConfig:
    values = {key: st.session_state[key] for key in URL_KEYS}
    edits = tuple(sorted(
        (name, i, j, v) for name, cells in st.session_state.get("edits", {}).items() if name in MATRIX_LABELS
        for (i, j), v in cells.items()
    ))
    return ExploreConfig(**values, edits=edits)



def page_state(page: str, sanitize_page) -> None:
    """Seed a page's own widget keys from the URL on the session's first visit to that page.

    ``sanitize_page(raw) -> (values, notices)`` validates the page's keys like :func:`sanitize`;
    later visits keep the session's values (the widgets persist them across page switches).
    """
    loaded = f"_url_loaded_{page}"
    if st.session_state.get(loaded):
        return
    values, notices = sanitize_page(st.query_params.to_dict())
    st.session_state.update(values)
    st.session_state[loaded] = True
    for notice in notices:
        add_notice(notice)



def set_page_url(params: dict[str, str]) -> None:
    """Add the current page's own URL parameters; app.py writes them after the shared ones."""
    st.session_state.setdefault("_page_url", {}).update(params)



def write_url(cfg: ExploreConfig, shared: bool = True) -> None:
    """The URL: the shared example's parameters (unless the page does not use them), then the page's own."""
    wanted = {**(cfg.url_params() if shared else {}), **st.session_state.pop("_page_url", {})}
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)



def share_link() -> None:
    """The current view as a link, with the code block's own copy button."""
    base = st.context.url or ""
    query = "&".join(f"{k}={v}" for k, v in st.query_params.to_dict().items())
    st.sidebar.caption("Share this view: the link reopens exactly these settings.")
    st.sidebar.code(f"{base}?{query}" if query else base, language=None, wrap_lines=True)
