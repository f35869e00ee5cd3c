"""A page's parts as tabs, of which only the open one runs; the open part is the URL's ``view``."""
from __future__ import annotations

import streamlit as st

from ..config import (
    quoted,
)
from . import notices
from .url_state import set_page_url


def sections(page: str, labels: dict[str, str]):
    """The page's parts as tabs of which only the open one runs; returns (slug, its container).

    A slider then redraws only the figures in view, not every figure of the page (each redrawn
    plotly figure costs the browser about 40 ms). The open part is the URL's ``view``, so a link
    reopens it; an unknown ``view`` gets a notice (notices.py) and the first part.
    """
    key, slugs = f"view_{page}", list(labels)
    names = {label: slug for slug, label in labels.items()}
    loaded = f"_url_loaded_view_{page}"
    if not st.session_state.get(loaded):
        raw = st.query_params.get("view")
        if raw is not None and raw not in labels:
            notices.add(f"{quoted('view', raw)} is not a part of this page (choose from "
                        f"{', '.join(slugs)}); showing {slugs[0]}.")
        st.session_state[key] = labels.get(raw, labels[slugs[0]])
        st.session_state[loaded] = True
    elif st.session_state.get(key) not in names:
        st.session_state[key] = labels[slugs[0]]
    tabs = st.tabs(list(labels.values()), key=key, on_change="rerun")
    slug = names[st.session_state[key]]
    set_page_url({"view": slug})
    return slug, tabs[slugs.index(slug)]



def open_section(page: str, labels: dict[str, str], slug: str) -> None:
    """Switch the page to one of its parts (from a callback: before the tabs are drawn)."""
    st.session_state[f"view_{page}"] = labels[slug]
