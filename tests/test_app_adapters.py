"""AppTest of the Adapters page: each part on two Real model runs shows the core's numbers, the example runs can be
trained from the page, the server's adapters folder is listed and read, and bad names get a notice."""
from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from lora_app import text
from lora_app.compute import jobs
from lora_core.adapter import adapters_zip_bytes
from lora_core.adapters.merge import Factors, merge_adapters
from lora_core.adapters.overview import compare_modules, summarize
from lora_core.finetune import FinetuneSettings, finetune
from lora_core.upload.many import read_adapter

PAGE = "pages/adapters.py"
REVERSE = FinetuneSettings(task="reverse", steps=25, seed=9101)
PERMUTE = FinetuneSettings(task="permute", steps=25, seed=9102)


@pytest.fixture(autouse=True)
def _cold(cold_store):
    yield cold_store


@pytest.fixture
def two_runs():
    runs = [finetune(jobs.base_model(), s) for s in (REVERSE, PERMUTE)]
    for r in runs:
        jobs.STORE.put(r)
    return runs


def open_adapters(at, **params):
    for key, value in params.items():
        at.query_params[key] = str(value)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def _adapter(run):
    s = run.settings
    return read_adapter(adapters_zip_bytes(run.adapters, r=s.r, alpha=s.alpha, rslora=s.rslora))


def md(at) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_the_overview_states_the_cores_numbers_for_a_real_run(app_test, two_runs):
    at = open_adapters(app_test, view="overview", ad_first=f"run:{REVERSE.key()}", ad_second=f"run:{PERMUTE.key()}")
    assert not at.error and not at.warning
    summ = summarize(_adapter(two_runs[0]).modules())
    norms = sorted(summ, key=lambda s: s.frobenius)
    assert f"The largest update is {norms[-1].name}'s (‖ΔW‖_F = {norms[-1].frobenius:.4g})" in md(at)
    assert f"median effective rank is {float(np.median([s.effective_rank for s in summ])):.2f}" in md(at)
    assert {m.label: m.value for m in at.metric}["Trained numbers"] == f"{two_runs[0].trainable:,}"


def test_one_module_shows_its_ranks_and_a_url_module_is_kept(app_test, two_runs):
    at = open_adapters(app_test, view="module", ad_first=f"run:{REVERSE.key()}", ad_module="layers.1.v_proj")
    summ = {s.name: s for s in summarize(_adapter(two_runs[0]).modules())}["layers.1.v_proj"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Effective rank"] == f"{summ.effective_rank:.2f}" and metrics["Stable rank"] == f"{summ.stable_rank:.2f}"
    assert at.query_params["ad_module"] == ["layers.1.v_proj"] or at.query_params["ad_module"] == "layers.1.v_proj"


def test_compare_states_phi_and_the_cosine_from_the_core(app_test, two_runs):
    at = open_adapters(app_test, view="compare", ad_first=f"run:{REVERSE.key()}", ad_second=f"run:{PERMUTE.key()}")
    comps = compare_modules(_adapter(two_runs[0]).modules(), _adapter(two_runs[1]).modules())
    phis = [float(c.phi[c.r1 - 1, c.r2 - 1]) for c in comps]
    assert f"φ at the smaller r averages {np.mean(phis):.2f}" in md(at)
    assert f"averages {np.mean([c.cosine for c in comps]):+.2f}" in md(at)


@pytest.mark.parametrize("combo", ["linear", "cat", "svd", "ties", "dare_linear"])
def test_merge_states_how_far_each_combination_is_from_the_exact_sum(app_test, two_runs, combo):
    at = open_adapters(app_test, view="merge", ad_first=f"run:{REVERSE.key()}", ad_second=f"run:{PERMUTE.key()}",
                       ad_combo=combo, ad_w1=0.5, ad_w2=1.5, ad_density=0.6, ad_seed=7)
    assert not at.error, [e.value for e in at.error]
    a, b = _adapter(two_runs[0]), _adapter(two_runs[1])
    name = next(iter(a.infos))
    parts = [a.module(name), b.module(name)]
    f = [Factors(p.A.float(), p.B.float(), p.info.scaling) for p in parts]
    m = merge_adapters([{name: f[0]}, {name: f[1]}], [0.5, 1.5], combo, density=0.6, seed=7)[name]
    exact = sum(w * x.scaling * (x.A.double() @ x.B.double()) for w, x in zip([0.5, 1.5], f))
    rel = float(torch.linalg.matrix_norm(m.A.double() @ m.B.double() - exact) / torch.linalg.matrix_norm(exact))
    assert text.adapters.merge_sentence(combo, rel, m.r) in md(at)
    assert at.get("download_button")


def test_missing_example_runs_offer_to_train_them(app_test):
    at = open_adapters(app_test, view="overview")
    assert "ad_train_examples" in {b.key for b in at.button}
    assert "They are not on this server yet" in " ".join(i.value for i in at.info)


@pytest.mark.parametrize("param, value, words", [
    ("ad_first", "../../etc/passwd", "is not an adapter's name"),
    ("ad_module", "layers.0.q_proj; rm", "is not a module path"),
    ("ad_combo", "magic", "is not one of"),
    ("ad_w1", "1e308", "ad_w1"),
])
def test_forged_url_values_get_a_notice_and_the_default(app_test, param, value, words):
    at = open_adapters(app_test, view="overview", **{param: value})
    said = " ".join(w.value for w in at.warning) + " ".join(i.value for i in at.info) + " ".join(
        e.value for e in at.error) + " ".join(t.value for t in at.toast)
    assert words in said.replace("\u2060", ""), said


def test_a_run_that_is_not_on_the_server_is_named_in_the_refusal(app_test):
    at = open_adapters(app_test, view="overview", ad_first="run:lora-reverse-nothing")
    assert "there is no finished Real model run" in " ".join(e.value for e in at.error)


def test_the_adapters_folder_is_listed_and_read_and_nothing_outside_it(app_test, tmp_path, monkeypatch):
    from reader_memory import tiny_gpt2_adapter
    tiny_gpt2_adapter(tmp_path / "gpt2-tiny", ["c_attn", "c_proj"])
    (tmp_path / "notes.txt").write_text("not an adapter")
    monkeypatch.setenv("LORA_ADAPTERS_DIR", str(tmp_path))
    at = open_adapters(app_test, view="overview", ad_first="dir:gpt2-tiny")
    assert not at.error, [e.value for e in at.error]
    options = at.selectbox(key="ad_first").options
    assert "server folder: gpt2-tiny" in options and not any("notes" in o for o in options)
    assert "fan_in_fan_out (GPT-2's Conv1D)" in " ".join(c.value for c in at.caption)
    # c_proj names both the attention output and the MLP output: 3 matrices in each of 2 layers
    assert re.search(r"6 adapted matrices at r = 4", md(at))
    at = open_adapters(app_test.__class__.from_file(app_test._script_path, default_timeout=60), view="overview",
                       ad_first="dir:elsewhere")
    assert "is not an adapter in this server's adapters folder" in " ".join(e.value for e in at.error)


def test_a_finished_real_run_opens_on_the_adapters_page_in_one_click(app_test, two_runs):
    for key, value in dict(view="finetune", real_steps=25, real_seed=9101).items():
        app_test.query_params[key] = str(value)
    app_test.switch_page("pages/real.py").run()
    # the Fine-tune tab shows the stored run (full fine-tuning's baseline is trained by the tab's own button)
    app_test.button(key="real_train").click().run()
    assert not app_test.exception
    app_test.button(key="real_open_adapter").click().run()
    assert not app_test.exception, app_test.exception
    assert app_test.session_state["ad_first"] == f"run:{REVERSE.key()}"
    assert "Adapters you bring" in [t.value for t in app_test.title]
    summ = summarize(_adapter(two_runs[0]).modules())
    assert f"{len(summ)} adapted matrices at r = 4" in md(app_test)


def test_three_adapters_merge_as_the_core_merges_them(app_test, two_runs):
    third = finetune(jobs.base_model(), FinetuneSettings(task="reverse", steps=25, seed=9103))
    jobs.STORE.put(third)
    at = open_adapters(app_test, view="merge", ad_first=f"run:{REVERSE.key()}", ad_second=f"run:{PERMUTE.key()}",
                       ad_third=f"run:{third.settings.key()}", ad_combo="cat", ad_w1=1, ad_w2=-0.5, ad_w3=2)
    assert not at.error, [e.value for e in at.error]
    assert "(3 adapters)" in md(at)
    assert text.adapters.merge_sentence("cat", 0.0, 12) in md(at)  # cat is exact, at rank 4 + 4 + 4


def test_an_adapter_that_cannot_be_opened_keeps_the_last_one_shown(app_test, two_runs, cold_store):
    from lora_core.runs import run_path
    at = open_adapters(app_test, view="overview", ad_first=f"run:{REVERSE.key()}")
    assert not at.error
    # the permute run goes from the server (memory and folder) after the list was drawn; then it is picked
    with jobs._lock:
        jobs.STORE._runs.pop(PERMUTE)
    run_path(cold_store, PERMUTE).unlink()
    at.selectbox(key="ad_first").set_value(f"run:{PERMUTE.key()}").run()
    said = " ".join(e.value for e in at.error)
    assert "there is no finished Real model run" in said and "Still showing Real model run (reverse)" in said
    assert "adapted matrices at r = 4" in md(at)  # the last adapter's overview is still there
