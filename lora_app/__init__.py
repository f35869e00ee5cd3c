"""The app's pieces that are not pages: the shared config, figure builders, LaTeX and streamlit helpers."""
