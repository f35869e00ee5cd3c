"""Streamlit's old pages-directory mode switched off, so every page runs inside app.py.

The defect: Streamlit 1.67 keeps a pages-directory mode for apps with a ``pages/`` folder
(``PagesManager.uses_pages_directory``, class-wide). Until some session of the server has called
``st.navigation``, the server's very first request for a deep link (/training, a student's shared
link opened before anyone opened /) runs pages/training.py alone: no sidebar, none of app.py's URL
state or guards, and the page's own imports of app.py's state fail. Seen on every fresh server.

Pinned to streamlit 1.67.0 (requirements.txt). ``tests/test_navigation.py`` opens a deep link as a
fresh server's first request and fails if the page then runs without app.py; AppTest needs the same
switch (``tests/helpers.keep_navigation_mode``).
"""
from __future__ import annotations

import streamlit as st


def entry_guard() -> None:
    """Make sure the page runs inside app.py, and not on its own: call first in every page.

    Switch the pages-directory mode off and rerun: the page's URL path gives it the same hash in
    both modes, so the rerun lands on the same page, now inside app.py.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        st.rerun()
