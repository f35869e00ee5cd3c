"""Streamlit widgets and helpers the pages share: URL state, the sidebar, charts, matrix editors, cell picking,
the stepper, following a training run, adapter files, the screen reporter and the page style."""
