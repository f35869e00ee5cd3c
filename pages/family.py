"""Family: QLoRA, DoRA, PiSSA, LoRA+ and VeRA on the example's matrices, and all six trained on one task.

The example (sizes, seed, r, α) is the sidebar's; the task's r*, the learning rate, the steps, LoRA+'s λ and QLoRA's
double quantization are the page's own, in the URL. Only the open part runs and draws.
"""
import streamlit as st

from lora_app import text
from lora_app.config.family import family_config, family_fields, sanitize_family
from lora_app.server import navigation
from lora_app.views import family as view
from lora_app.widgets import adapter_files, notices, sections, url_state

navigation.entry_guard()

example = url_state.current_config()
r_max = min(example.d, example.k)
url_state.page_state("family", lambda raw: sanitize_family(raw, r_max))
url_state.recheck("family", family_fields(r_max))
cfg = family_config(example, {f.name: st.session_state[f.name] for f in family_fields(r_max)},
                    adapter_files.uploaded_magnitude(example.d, example.k))
url_state.set_page_url(cfg.url_params())

st.title("The LoRA family on the same matrices")
notices.show("family")
st.markdown(text.family.INTRO)

part, where = sections.sections("family", text.family.SECTIONS)
with where:
    {"qlora": view.qlora, "dora": view.dora, "pissa": view.pissa, "loraplus": view.loraplus, "vera": view.vera,
     "compare": view.compare}[part](cfg)
