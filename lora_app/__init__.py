"""The app's pieces that are not pages: the shared config, figure builders, LaTeX and streamlit helpers.

Streamlit runs a full garbage collection after every script run. With torch, pandas and plotly
loaded that took 140-160 ms a rerun, most of the server's time. Their objects live as long as the
process, so import them once here and freeze them out of the collector's sight.
"""
import gc

import pandas  # noqa: F401
import plotly.graph_objects  # noqa: F401
import torch  # noqa: F401

gc.collect()
gc.freeze()
