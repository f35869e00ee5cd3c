"""AppTest of the Real model page: each tab opens, Train shows the numbers an independent run gives, a second
session is served from the store, bad input is refused with a message, and saved runs are served only if verified.

Every test takes a cold store with its own runs folder (the cold_store fixture) and trains 25 steps per run.
"""
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load as load_safetensors
from streamlit.testing.v1 import AppTest

from lora_app import text
from lora_app.compute import jobs
from lora_app.config.real import DEFAULT_TEXT
from lora_core.adapter import adapters_zip_bytes
from lora_core.experiments import PLACEMENTS, RANKS, budget_grid, family_grid, rank_sweep
from lora_core.finetune import FinetuneSettings, finetune
from lora_core.runs import run_bytes, run_path, save_run
from lora_core.tiny import ADAPT_TASKS, load_base_model, model_digest, parameter_count

ROOT = Path(__file__).resolve().parents[1]
PAGE = "pages/real.py"
pct = text.real.pct
URL_KEYS = ("real_lora", "real_task", "real_layers", "real_r", "real_alpha", "real_rslora", "real_lr", "real_steps",
            "real_seed", "real_full", "real_dora", "real_text", "real_sweep")


@pytest.fixture(autouse=True)
def _cold(cold_store):
    yield cold_store
    for job in list(jobs._jobs.values()):  # nothing one test started trains on into the next
        job.cancelled.set()
        job.wait(60)


@pytest.fixture(scope="module")
def base():
    return load_base_model()


def open_real(at, **params):
    """The Real page in a new session opened from a link with these parameters."""
    for key, value in params.items():
        at.query_params[key] = str(value)
    at.switch_page(PAGE).run()
    assert not at.exception, at.exception
    return at


def second_session():
    """Another browser's session of the same server (app_test's fixture has made AppTest keep navigation)."""
    return AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)


def url(at) -> dict[str, str]:
    return {k: (v[0] if isinstance(v, list) else v) for k, v in at.query_params.items()}


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def errors(at) -> str:
    return " ".join(e.value for e in at.error).replace("\u2060", "")


def warnings(at) -> str:
    return " ".join(w.value for w in at.warning).replace("\u2060", "")


def markdown(at) -> str:
    return "\n".join(m.value for m in at.markdown)


def keys(at, kind="button") -> set[str]:
    return {b.key for b in at.get(kind)}


def settings(seed, **kw) -> FinetuneSettings:
    return FinetuneSettings(task=kw.pop("task", "reverse"), steps=25, seed=seed, **kw)


def train(at):
    at.button(key="real_train").click().run()
    assert not at.exception, at.exception
    return at


def assert_results_of(at, base, s: FinetuneSettings):
    """The metrics are the numbers an independent run of the same settings on the shipped model gives."""
    lora, full = finetune(base, s), finetune(base, replace(s, full=True))
    m = metrics(at)
    assert m[f"Held-out accuracy on {s.task}"] == pct(lora.accuracy) == pct(jobs.STORE.get(s).accuracy)
    assert jobs.STORE.get(s).accuracy == pytest.approx(lora.accuracy, abs=2e-4)
    assert m["Trained numbers"] == f"{lora.trainable:,}"
    assert lora.trainable == sum(A.numel() + B.numel() for A, B in lora.adapters.values())
    size = len(adapters_zip_bytes(lora.adapters, r=s.r, alpha=s.alpha, rslora=s.rslora))
    assert m["Adapter on disk (PEFT zip)"] == f"{size / 1024:.1f} kB"
    assert m["Full fine-tuning's accuracy"] == pct(full.accuracy)
    assert "real_train" not in keys(at)


def test_dora_on_trains_the_cores_dora_run_and_its_adapter_says_use_dora(app_test):
    """The DoRA toggle: the run is the core's DoRA run (its trained numbers count each output's m), the link keeps
    it, and the download is a DoRA adapter with a magnitude for every adapted module."""
    import io
    import json
    import zipfile

    from lora_app.compute.real import adapter_zip
    base = jobs.base_model()
    at = open_real(app_test, view="finetune", real_steps=25, real_seed=9011, real_dora=1)
    assert "to run these settings: DoRA first, then full fine-tuning" in " ".join(i.value for i in at.info)
    s = settings(9011, variant="dora")
    train(at)
    assert not at.error
    dora = finetune(base, s)
    m = metrics(at)
    assert m["Held-out accuracy on reverse"] == pct(dora.accuracy)
    assert m["Trained numbers"] == f"{dora.trainable:,}"
    assert dora.trainable == sum(A.numel() + B.numel() for A, B in dora.adapters.values()) + 4 * 32  # m: 32 per matrix
    assert url(at)["real_dora"] == "1"
    with zipfile.ZipFile(io.BytesIO(adapter_zip(jobs.STORE.get(s)))) as zf:
        config = json.loads(zf.read("adapter_config.json"))
        assert config["use_dora"] is True
        assert sum(key.endswith("lora_magnitude_vector") for key in
                   load_safetensors(zf.read("adapter_model.safetensors"))) == 4


# --- every tab ----------------------------------------------------------------------------------

@pytest.mark.parametrize("view", ["model", "finetune", "where", "rank", "family", "before"])
def test_every_tab_opens_without_an_error(app_test, view):
    at = open_real(app_test, view=view, real_steps=25, real_seed=9000)
    assert not at.error and not at.warning, (errors(at), warnings(at))
    assert url(at)["view"] == view
    if view == "model":
        assert metrics(at)["Numbers in the model"] == f"{parameter_count(jobs.base_model()):,}"
    if view == "finetune":
        assert "real_train" in keys(at)
    if view == "where":
        assert "real_grid_run" in keys(at) and "0 of 20 runs finished." in [c.value for c in at.caption]
    if view == "rank":
        assert "real_sweep_run" in keys(at)
    if view == "family":
        assert "real_family_run" in keys(at) and "0 of 16 runs finished." in [c.value for c in at.caption]
    if view == "before":
        assert "Train the Fine-tune tab's settings" in " ".join(i.value for i in at.info)


# --- train, and a second session -----------------------------------------------------------------

def test_train_shows_the_numbers_of_an_independent_run_and_a_second_session_gets_them_at_once(
        app_test, base, monkeypatch):
    s = settings(9001)
    at = open_real(app_test, view="finetune", real_steps=25, real_seed=9001)
    assert "real_train" in keys(at) and not at.metric
    train(at)
    assert not at.error
    assert_results_of(at, base, s)
    u = url(at)
    assert {k: u[k] for k in URL_KEYS} == {
        "real_lora": "q,v", "real_task": "reverse", "real_layers": "all", "real_r": "4", "real_alpha": "8",
        "real_rslora": "0", "real_lr": "0.01", "real_steps": "25", "real_seed": "9001", "real_full": "0",
        "real_dora": "0", "real_text": DEFAULT_TEXT, "real_sweep": "q+v", } and u["view"] == "finetune"

    def no_training(*args, **kwargs):
        raise AssertionError("the second session submitted a job")

    monkeypatch.setattr(jobs, "submit", no_training)
    other = open_real(second_session(), **{k: v for k, v in u.items()})
    assert not other.error and "real_train" not in keys(other)
    assert metrics(other) == metrics(at)  # on its very first run: the store had it


def test_the_url_holds_every_control_after_the_controls_change(app_test, base):
    at = open_real(app_test, view="finetune", real_steps=25, real_seed=9002)
    at.checkbox(key="real_lora_k").check()
    at.checkbox(key="real_lora_v").uncheck()
    at.slider(key="real_r").set_value(2)
    at.toggle(key="real_rslora").set_value(True)
    at.number_input(key="real_alpha").set_value(3.0)
    at.number_input(key="real_seed").set_value(9003)
    at.run()
    assert not at.exception and not at.error
    s = FinetuneSettings(task="reverse", targets=("q", "k"), r=2, alpha=3.0, rslora=True, steps=25, seed=9003)
    u = url(at)
    assert {k: u[k] for k in ("real_lora", "real_r", "real_alpha", "real_rslora", "real_seed", "real_steps")} == {
        "real_lora": "q,k", "real_r": "2", "real_alpha": "3", "real_rslora": "1", "real_seed": "9003", "real_steps": "25"}
    train(at)
    assert_results_of(at, base, s)
    assert url(at)["real_lora"] == "q,k"


# --- bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize("typed,words", [
    ("", "the sequence is empty"),
    ("31415abc", "holds `a`, `b`, `c`, which the model has no token for"),
    ("3141592😀", "which the model has no token for"),
    ("<script>", "which the model has no token for"),
    ("3 1 4", "has 3 digits; the model reads exactly 8"),
])
def test_a_sequence_the_model_cannot_read_gets_a_message_and_the_last_one_is_kept(app_test, typed, words):
    at = open_real(app_test, view="model", real_text="27182818")
    good = at.session_state["_real_last_good"]
    assert good.tokens == (2, 7, 1, 8, 2, 8, 1, 8)
    at.text_input(key="real_text").input(typed).run()
    assert not at.exception
    assert words in errors(at) and "the last sequence that could be read is kept" in errors(at)
    assert at.session_state["_real_last_good"] == good


def test_a_sequence_of_ten_thousand_characters_is_refused_from_the_url_and_from_the_session(app_test):
    at = open_real(app_test, view="model", real_text="7" * 10_000)
    assert "is 10,000 characters long" in warnings(at) and "showing 3 1 4 1 5 9 2 6 instead" in warnings(at)
    assert at.session_state["real_text"] == DEFAULT_TEXT and len(max(warnings(at).split("\n"), key=len)) < 400
    at.session_state["real_text"] = "8" * 10_000  # what a forged widget message could hold
    at.run()
    assert not at.exception
    # the input keeps at most its max_chars (64) of it, and those are refused with the count of digits
    assert "has 64 digits; the model reads exactly 8" in errors(at) and len(errors(at)) < 400
    assert at.session_state["_real_last_good"].tokens == (3, 1, 4, 1, 5, 9, 2, 6)


@pytest.mark.parametrize("lr", ["inf", "nan", "-1", "abc", "1e999"])
def test_a_learning_rate_that_is_not_a_positive_finite_number_is_refused_from_the_url(app_test, lr):
    at = open_real(app_test, view="finetune", real_lr=lr, real_steps=25, real_seed=9004)
    assert f"real_lr = `{lr}` is not a positive, finite learning rate; using real_lr=0.01" in warnings(at)
    assert at.session_state["real_lr"] == 0.01 and url(at)["real_lr"] == "0.01"
    assert at.session_state["_real_last_good"].settings == settings(9004)
    assert not at.error


def test_r_above_the_width_is_refused_naming_the_width_and_nothing_changes(app_test, base):
    """The slider stops at 32, the narrow side of every matrix; a link or a forged message can still ask for more."""
    at = open_real(app_test, view="finetune", real_steps=25, real_seed=9005, real_lora="q", real_r=40)
    assert not at.exception
    assert ("real_r = `40` is above the width of this model's matrices: each is 32 wide on its narrow side, so its "
            "rank, and r, is at most 32; using real_r=32.") in warnings(at)
    assert at.slider(key="real_r").max == 32 and at.session_state["real_r"] == 32
    good = settings(9005, targets=("q",), r=32)
    assert at.session_state["_real_last_good"].settings == good and url(at)["real_r"] == "32"
    at.slider(key="real_r").set_value(40).run()  # as a forged message would send it
    assert not at.exception
    assert "sent a value this page cannot read" in warnings(at)
    assert at.session_state["real_r"] == 32 and at.session_state["_real_last_good"].settings == good
    train(at)
    assert_results_of(at, base, good)
    assert jobs.STORE.get(replace(good, r=40)) is None


def test_no_target_ticked_is_refused_and_train_runs_the_last_good_settings(app_test, base):
    at = open_real(app_test, view="finetune", real_steps=25, real_seed=9006, real_r=2)
    good = settings(9006, r=2)
    at.checkbox(key="real_lora_q").uncheck().run()
    at.checkbox(key="real_lora_v").uncheck().run()
    assert not at.exception
    assert "no target is ticked: choose at least one of Q, K, V, O and the FFN, or full fine-tuning" in errors(at)
    assert at.session_state["_real_last_good"].settings == replace(good, targets=("v",))
    assert url(at)["real_lora"] == "none"
    train(at)
    assert_results_of(at, base, replace(good, targets=("v",)))


# --- the experiments --------------------------------------------------------------------------

def test_the_grid_trains_twenty_runs_and_its_sentence_is_built_from_their_accuracies(app_test):
    at = open_real(app_test, view="where", real_steps=25, real_seed=9007)
    at.button(key="real_grid_run").click().run()
    assert not at.exception and not at.error
    cells = [budget_grid(jobs.base_model().cfg, settings(9007, task=task)) for task in ADAPT_TASKS]
    assert sum(map(len, cells)) == 20 == 2 * (len(PLACEMENTS) + 1)
    runs = [[jobs.STORE.get(s) for s in col] for col in cells]
    assert all(r is not None and not r.stopped for col in runs for r in col)
    acc = np.array([[r.accuracy for r in col] for col in runs]).T
    rows = ["+".join(t.upper() for t in p) for p in PLACEMENTS] + ["full fine-tuning"]
    expected = text.real.grid_sentence(rows, list(ADAPT_TASKS), acc)
    assert expected and expected in markdown(at)
    shown = set(re.findall(r"\d+\.\d %", expected))
    assert shown and shown <= {pct(a) for a in acc.flat}
    for j, task in enumerate(ADAPT_TASKS):  # the winner named is the best LoRA placement on each task
        best = int(np.argmax(acc[:-1, j]))
        assert f"On **{task}**, {rows[best]} won with {pct(acc[best, j])}" in expected
    assert "real_grid_run" not in keys(at)


def test_the_family_trains_every_variant_on_both_tasks_and_shows_what_each_run_measured(app_test, base):
    """Seven runs a task (VeRA twice: at r and at the widest r) and full fine-tuning; the table and the sentence
    hold each run's own numbers, and a run of the core with the same settings gives the same accuracy."""
    at = open_real(app_test, view="family", real_steps=25, real_seed=9012, real_r=2)
    at.button(key="real_family_run").click().run()
    assert not at.exception and not at.error, errors(at)
    grid = [family_grid(base.cfg, settings(9012, task=task, r=2)) for task in ADAPT_TASKS]
    assert [[s.variant if not s.full else "full" for s in col] for col in grid] == [
        ["lora", "dora", "qlora", "pissa", "loraplus", "vera", "vera", "full"]] * 2
    assert grid[0][6].r == 32 and grid[0][5].r == 2
    runs = [[jobs.STORE.get(s) for s in col] for col in grid]
    assert all(r is not None and not r.stopped for col in runs for r in col)
    acc = np.array([[r.accuracy for r in col] for col in runs]).T
    sentence = text.real.family_sentence(
        [f"{n} · r = {s.r}" if not s.full else "full fine-tuning" for n, s in zip(
            ["LoRA", "DoRA", "QLoRA", "PiSSA", "LoRA+", "VeRA", "VeRA", ""], grid[0])],
        [r.settings.variant if not r.settings.full else "full" for r in runs[0]], list(ADAPT_TASKS), acc,
        [r.trainable for r in runs[0]], np.array([[r.frozen_bytes for r in col] for col in runs]).T,
        np.array([[r.wall_s for r in col] for col in runs]).T)
    assert sentence and sentence in markdown(at)
    table = at.dataframe[0].value
    assert list(table.index) == ["LoRA · r = 2", "DoRA · r = 2", "QLoRA · r = 2", "PiSSA · r = 2", "LoRA+ · r = 2",
                                 "VeRA · r = 2", "VeRA · r = 32", "full fine-tuning"]
    assert list(table["trained numbers"]) == [f"{r.trainable:,}" for r in runs[0]]
    assert table.loc["QLoRA · r = 2", "frozen weights as stored"] == f"{runs[0][2].frozen_bytes / 1e3:,.1f} kB"
    assert runs[0][2].frozen_bytes < runs[0][0].frozen_bytes / 3
    # an independent run of the core with one of these settings reaches the accuracy the store holds
    assert finetune(base, grid[1][3]).accuracy == runs[1][3].accuracy
    assert "real_family_run" not in keys(at)


def test_the_rank_sweep_trains_and_its_sentence_and_spectra_follow(app_test):
    at = open_real(app_test, view="rank", real_steps=25, real_seed=9008)
    assert "Train the Fine-tune tab's settings first" in " ".join(i.value for i in at.info)
    at.button(key="real_sweep_run").click().run()
    assert not at.exception and not at.error
    acc, full = {}, {}
    for task in ADAPT_TASKS:
        sweep = rank_sweep(settings(9008, task=task))
        assert [s.r for s in sweep] == list(RANKS)
        acc[task] = [jobs.STORE.get(s).accuracy for s in sweep]
        full[task] = jobs.STORE.get(settings(9008, task=task, full=True)).accuracy
    expected = text.real.sweep_sentence(list(RANKS), acc, full, "Q+V")
    assert expected and expected in markdown(at)
    assert "real_sweep_run" not in keys(at)
    # the sweep's full run on reverse is the Fine-tune tab's baseline: the spectra can be drawn
    assert "Across the 12 matrices, the top 4 directions" in markdown(at)


def test_before_and_after_shows_the_adapted_attention_and_a_sentence_from_it(app_test, base):
    s = settings(9009)
    assert jobs.submit((s,), "test").wait(60)
    run = jobs.STORE.get(s)
    at = open_real(app_test, view="before", real_steps=25, real_seed=9009, real_text="9 8 7 6 5 4 3 2")
    assert not at.error and not at.info
    x = torch.tensor([[9, 8, 7, 6, 5, 4, 3, 2]])
    before, after = [], []
    with torch.no_grad():
        base(x, keep=before)
        base(x, run.adapters, run.scaling, keep=after)
    changes = [(f"layer {i + 1}, head {h + 1}", float(0.5 * (a[0, h] - b[0, h]).abs().sum(-1).mean()))
               for i, (b, a) in enumerate(zip(before, after)) for h in range(b.shape[1])]
    assert len(changes) == 4 and max(c for _, c in changes) > 0
    name, most = max(changes, key=lambda c: c[1])
    sentence = next(m.value for m in at.markdown if m.value.startswith("The attention moved most in"))
    assert sentence.startswith(f"The attention moved most in {name}: on average, each row of its map moved {pct(most)}")


# --- runs saved in the runs folder -----------------------------------------------------------

def test_a_saved_run_in_the_runs_folder_is_served_without_training(app_test, base, cold_store, monkeypatch):
    s = settings(9010)
    for x in (s, replace(s, full=True)):
        save_run(cold_store, finetune(base, x), model_digest(base))

    def no_training(*args, **kwargs):
        raise AssertionError("a saved run was trained again")

    monkeypatch.setattr(jobs, "submit", no_training)
    at = open_real(app_test, view="finetune", real_steps=25, real_seed=9010)
    assert not at.error and "real_train" not in keys(at)
    assert_results_of(at, base, s)
    assert not jobs.STORE.refused


@pytest.mark.parametrize("tamper", ["accuracy", "weight"])
def test_a_tampered_saved_run_is_refused_and_the_page_trains_instead(app_test, base, cold_store, tamper):
    s = settings(9011)
    run = finetune(base, s)
    if tamper == "accuracy":
        run = run._replace(accuracies=run.accuracies[:-1] + (min(1.0, run.accuracies[-1] + 0.1),))
    else:
        name = next(iter(run.adapters))
        A, B = run.adapters[name]
        run = run._replace(adapters={**run.adapters, name: (A, B + 5.0)})
    cold_store.mkdir(parents=True, exist_ok=True)
    run_path(cold_store, s).write_bytes(run_bytes(run, model_digest(base)))
    at = open_real(app_test, view="finetune", real_steps=25, real_seed=9011)
    assert "real_train" in keys(at) and not at.metric
    assert "held-out accuracy, not the" in jobs.STORE.refused[s]
    train(at)
    assert not at.error
    assert_results_of(at, base, s)
