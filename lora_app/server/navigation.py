"""Streamlit's old pages-directory mode switched off, so every page runs inside app.py."""
from __future__ import annotations

import streamlit as st



def entry_guard() -> None:
    """Make sure the page runs inside app.py, and not on its own.

    Streamlit keeps a pages-directory mode for old apps with a ``pages/`` folder: until some session
    has called ``st.navigation``, a server's very first request for /training would run
    pages/training.py alone, without app.py's shared state. Switch that mode off and rerun: the
    page's URL path gives it the same hash in both modes, so the rerun lands on the same page.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
