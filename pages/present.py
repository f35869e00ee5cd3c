"""Present: the seed's story as live slides, driven by a clicker (← → PageUp PageDown).

Each slide is laid out for the window it is shown in (``slide_layout.SlideSpace``): the text size
follows the window and the text-size control, and rem units carry it to every widget.
"""
import streamlit as st

from lora_app import slides
from lora_app.config.present import FONT_SIZES, SLIDES, sanitize_present
from lora_app.server import navigation
from lora_app.slides import layout as slide_layout
from lora_app.widgets import notices, screen, url_state

navigation.entry_guard()
url_state.page_state("present", sanitize_present)
ex = url_state.current_config()


def go(delta: int) -> None:
    st.session_state["slide"] = min(max(st.session_state["slide"] + delta, 1), len(SLIDES))


st.session_state["slide"] = min(max(int(st.session_state.get("slide", 1)), 1), len(SLIDES))
for action in screen.take_keys("present"):  # every clicker press counted in the browser, none dropped
    go(1 if action == "next" else -1)
n = st.session_state["slide"]
key, title = SLIDES[n - 1]
font = st.session_state.get("font") if st.session_state.get("font") in FONT_SIZES else "L"
scr = screen.current()
rem, _ = slide_layout.sizes(scr, font)
st.html(f"""<style>
  html {{ font-size: {rem:.2f}px !important; }}
  header[data-testid="stHeader"] {{ display: none; }}
  /* reached from another page by its link, the slides would keep that page's sidebar, empty, over the footer */
  section[data-testid="stSidebar"] {{ display: none; }}
  [data-testid="stMainBlockContainer"] {{ padding-top: 0.8rem; padding-bottom: {slide_layout.FOOTER_REM}rem; max-width: none; }}
  [data-testid="stMain"] h1 {{ font-size: 1.5rem; line-height: 1.2; padding: 0 0 0.2rem; }}
  [data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li {{
    font-size: 1rem; line-height: {slide_layout.LINE}; margin-bottom: 0.3rem; }}
  [data-testid="stMarkdownContainer"] ul {{ margin-bottom: 0; }}
  [data-testid="stMetricValue"] {{ font-size: 1.6rem; }}
  .st-key-slide_nav {{ position: fixed; left: 0; right: 0; bottom: 0; z-index: 99; padding: 0.45rem 1.5rem;
                       border-top: 1px solid rgba(128, 128, 128, 0.4); }}
  /* the footer is opaque in the theme's own background, passed down from the app's root: a colour chosen on the
     server would stay the old theme's when the browser switches to dark mode, with no rerun to change it */
  [data-testid="stAppViewContainer"], [data-testid="stAppViewContainer"] > div, [data-testid="stMain"],
  [data-testid="stMainBlockContainer"], [data-testid="stMainBlockContainer"] > div,
  [data-testid="stLayoutWrapper"]:has(> .st-key-slide_nav), .st-key-slide_nav {{ background-color: inherit; }}
  .st-key-present_pageup, .st-key-present_pagedown {{ display: none; }}
</style>""")
notices.show("present")
screen.listen()  # the clicker's keys count from the moment the slide is drawn
# the footer first (it is fixed to the window's bottom): a slide that follows a training run never returns
# while the run goes on, and the footer must be this run's, not the last one's greyed copy
with st.container(key="slide_nav", horizontal=True, vertical_alignment="center", gap="small"):
    st.button("◀ Previous", on_click=go, args=(-1,), shortcut="Left", disabled=n == 1, key="present_prev")
    st.button("Next ▶", on_click=go, args=(1,), shortcut="Right", disabled=n == len(SLIDES), type="primary",
              key="present_next")
    st.markdown(f"**Slide {n} of {len(SLIDES)}**", width="content", help="← → PageUp PageDown, or a clicker")
    st.segmented_control("Text size", list(FONT_SIZES), key="font", label_visibility="collapsed",
                         persist_state="session")
    st.page_link("pages/explore.py", label="Exit", icon=":material/close:", help="Leave the slides for the Explore page")
# clickers send PageUp/PageDown: two more shortcuts, on buttons kept out of sight
st.button("previous slide", on_click=go, args=(-1,), shortcut="PageUp", key="present_pageup")
st.button("next slide", on_click=go, args=(1,), shortcut="PageDown", key="present_pagedown")
space = slide_layout.SlideSpace(scr, font, f"{n} · {title}")
st.title(f"{n} · {title}", anchor=False)
url_state.set_page_url({"slide": str(n), "font": font})
slides.DRAW[key](ex, space)
