"""Adapters: bring a PEFT LoRA adapter (or take a Real model run) and see its update, compare two, merge them.

The adapters are named in the URL (run:…, dir:…; an upload is named but stays in the session); each part reads them
one module at a time through lora_core.upload.many and the cached calls of lora_app.compute.adapters.
"""
import streamlit as st

from lora_app import text
from lora_app.compute import adapters as compute
from lora_app.config.adapters import FIELDS, adapters_config, sanitize_adapters
from lora_app.server import navigation
from lora_app.views import adapters as view
from lora_app.widgets import notices, sections, url_state
from lora_app.widgets.adapter_uploads import upload_slots

navigation.entry_guard()
url_state.page_state("adapters", sanitize_adapters)
url_state.recheck("adapters", FIELDS)
t = text.adapters

st.title("Adapters you bring")
notices.show("adapters")
st.markdown(t.INTRO)

with st.expander("Upload an adapter", icon=":material/upload:"):
    st.markdown(t.SOURCES_NOTE)
    uploads = upload_slots()
names = compute.source_names(uploads)
cols = st.columns(2)
with cols[0]:
    view.choose("ad_first", "Adapter", names)
with cols[1]:
    view.choose("ad_second", "Second adapter (Compare and Merge)", names)
url_state.recheck("adapters", FIELDS)
cfg = adapters_config({f.name: st.session_state[f.name] for f in FIELDS})
url_state.set_page_url(cfg.url_params())

part, where = sections.sections("adapters", t.SECTIONS)
with where:
    first = view.opened_or_reason(cfg.first, uploads, "ad_train_examples")
    if first is not None and part == "overview":
        view.overview(cfg, first)
    elif first is not None and part == "module":
        view.module(cfg, first)
    elif first is not None:
        second = view.opened_or_reason(cfg.second, uploads, "ad_train_examples_2")
        if second is not None:
            if part == "compare":
                view.compare(cfg, first, second)
            else:
                view.merge(cfg, first, second, uploads, names)
