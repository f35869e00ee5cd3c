"""Present: the seed's story as ten live slides, driven by a clicker (← → PageUp PageDown)."""
import streamlit as st

from lora_app import slides, ui
from lora_app.config.present import FONT_SIZES, SLIDES, WITH_CONTROLS, sanitize_present
from lora_core import PRESETS

ui.entry_guard()
ui.page_state("present", sanitize_present)
ex = ui.current_config()


def go(delta: int) -> None:
    st.session_state["slide"] = min(max(st.session_state["slide"] + delta, 1), len(SLIDES))


n = st.session_state["slide"] = min(max(int(st.session_state.get("slide", 1)), 1), len(SLIDES))
key, title = SLIDES[n - 1]
size = FONT_SIZES.get(st.session_state.get("font"), FONT_SIZES["L"])
st.html(f"""<style>
  [data-testid="stMainBlockContainer"] {{ padding-top: 4.2rem; max-width: 1880px; }}
  [data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li {{ font-size: {size}px; line-height: 1.35; }}
  [data-testid="stMetricValue"] {{ font-size: {int(size * 1.5)}px; }}
  .st-key-present_pageup, .st-key-present_pagedown {{ display: none; }}
</style>""")
ui.show_notices()
st.title(f"{n} · {title}")

if key in WITH_CONTROLS:
    cols = st.columns([1, 2, 3])
    cols[0].selectbox("Preset", PRESETS, key="preset", format_func=ui.PRESET_LABELS.get,
                     persist_state="session")
    cols[1].slider("r: LoRA rank", 1, max(min(ex.d, ex.k), 2), key="r", disabled=min(ex.d, ex.k) < 2,
                   persist_state="session")
slides.DRAW[key](ex)

st.divider()
cols = st.columns([1.2, 1.2, 3, 2.5])
cols[0].button("◀ Previous", on_click=go, args=(-1,), shortcut="Left", disabled=n == 1, width="stretch")
cols[1].button("Next ▶", on_click=go, args=(1,), shortcut="Right", disabled=n == len(SLIDES), width="stretch",
               type="primary")
# clickers send PageUp/PageDown: two more shortcuts, on buttons kept out of sight
st.button("previous slide", on_click=go, args=(-1,), shortcut="PageUp", key="present_pageup")
st.button("next slide", on_click=go, args=(1,), shortcut="PageDown", key="present_pagedown")
cols[2].markdown(f"**Slide {n} of {len(SLIDES)}** · keys ← → or a clicker's PageUp/PageDown")
cols[3].segmented_control("Text size", list(FONT_SIZES), key="font", label_visibility="collapsed",
                          persist_state="session")
ui.set_page_url({"slide": str(n), "font": st.session_state.get("font") or "L"})
