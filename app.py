"""Entry point: page config, navigation, the shared sidebar, and the URL written after each run."""
import streamlit as st

from lora_app import server
from lora_app.compute import device_choice
from lora_app.widgets import notices, screen, sidebar, style, url_state

server.install(st.session_state)  # pace this run, then Streamlit's patches, once per process: the order is in server/__init__.py
st.set_page_config(page_title="LoRA inside attention", page_icon="🧮", layout="wide")
server.admit(st.session_state)  # beyond LORA_MAX_SESSIONS sessions, the new ones are told the server is full
url_state.load_url_state()
notices.say_refused(server.take_refusals(st.session_state))  # the server guards, the page tells: app.py wires the two
style.apply()

page = st.navigation(position="top", pages=[
    st.Page("pages/explore.py", title="Explore", url_path="home", default=True),
    st.Page("pages/training.py", title="Training", url_path="training"),
    st.Page("pages/family.py", title="Family", url_path="family"),
    st.Page("pages/attention.py", title="Attention", url_path="attention"),
    st.Page("pages/real.py", title="Real model", url_path="real"),
    st.Page("pages/adapters.py", title="Adapters", url_path="adapters"),
    st.Page("pages/rank.py", title="Rank", url_path="rank"),
    st.Page("pages/scale.py", title="Scale", url_path="scale"),
    st.Page("pages/present.py", title="Present", url_path="present"),
    # the default page is served at /; this makes /explore, as written in links and the README, open it too
    st.Page("pages/explore.py", title="Explore", url_path="explore", visibility="hidden"),
])

presenting = page.url_path == "present"  # a projector gets the slide alone: no sidebar
OWN_CONTROLS = ("real", "adapters", "scale")  # pages with no toy example: its sidebar controls would mislead
if presenting or page.url_path in OWN_CONTROLS:
    url_state.validate_controls()
if not presenting:
    if page.url_path not in OWN_CONTROLS:
        sidebar.sidebar_controls()
    device = device_choice()
    st.sidebar.caption(f"Math runs on **{device.label}**")
    if device.problem:
        st.sidebar.warning(f"{device.problem}; using the CPU instead.")

page.run()
screen.report()
url_state.write_url(url_state.current_config(), shared=page.url_path not in OWN_CONTROLS)
if not presenting:
    url_state.share_link()
