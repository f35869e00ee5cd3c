"""The app's half of the explainer: everything that is not a page (see docs/ARCHITECTURE.md).

- ``server/``: what guards or patches Streamlit's runtime, installed once by app.py (``server.install``);
- ``widgets/``: URL state, the sidebar, charts, matrix editors, cell picking, the stepper, following a run;
- ``slides/``: the Present page's layout engine and its slides;
- ``views/``: what a page and its slides both draw;
- ``config/``, ``compute/``, ``figures/``, ``text/``: one module per page each, plus their shared parts.

Importing this package does no work: each room loads only what it needs.
"""
