"""What a page and its slides both draw, one module per page (Streamlit calls, built from figures and text)."""
