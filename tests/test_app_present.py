"""AppTest of the Present page: the slides, their navigation, their URL, and the live controls."""
import numpy as np
import pytest

from helpers import figures, heatmap_z
from lora_app.config.present import SLIDES


@pytest.fixture
def at(app_test):
    app_test.run()
    app_test.switch_page("pages/present.py").run()
    assert not app_test.exception
    return app_test


def click(at, label):
    next(b for b in at.button if b.label == label).click().run()


def test_all_slides_render_in_order_with_their_figures(at):
    titles, counts = [], []
    for n in range(1, len(SLIDES) + 1):
        assert not at.exception, n
        titles.append(at.title[0].value)
        counts.append(len(at.get("plotly_chart")))
        assert at.query_params["slide"] in (str(n), [str(n)])
        if n < len(SLIDES):
            click(at, "Next ▶")
    assert titles == [f"{n} · {t}" for n, (_, t) in enumerate(SLIDES, start=1)]
    # every slide but the equation and the counts has a live figure
    assert [n for n, c in enumerate(counts, start=1) if c == 0] == [2, 3]
    click(at, "◀ Previous")
    assert at.title[0].value.startswith(f"{len(SLIDES) - 1} ·")


def test_presenter_view_has_no_sidebar_controls(at):
    assert len(at.sidebar.children) == 0
    assert not any(s.key == "n" for s in at.slider)


def test_the_rank_slider_on_a_slide_changes_its_figures(at):
    at.session_state["slide"] = 4
    at.run()
    assert "A_Q (5×2)" in figures(at)
    at.slider(key="r").set_value(3).run()
    assert "A_Q (5×3)" in figures(at) and "B_Q (3×3)" in figures(at)


def test_text_size_control_scales_the_slide_text(at):
    css = lambda: " ".join(h.proto.body for h in at.get("html"))
    import re
    root = lambda: float(re.search(r"html \{ font-size: ([\d.]+)px", css()).group(1))
    large = root()  # L on the 1280×800 a session has before its browser reports: 27 px × 800/1080
    assert large == pytest.approx(27 * 800 / 1080, abs=0.01)
    at.segmented_control(key="font").set_value("XL").run()
    assert root() == pytest.approx(33 * 800 / 1080, abs=0.01) and at.query_params["font"] in ("XL", ["XL"])


@pytest.mark.parametrize("slide,shown,notice", [("99", len(SLIDES), f"outside 1…{len(SLIDES)}"),
                                                ("zero", 1, "not a slide number"), ("-2", 1, "outside")])
def test_a_tampered_slide_number_is_clamped_with_a_notice(app_test, slide, shown, notice):
    app_test.run()
    app_test.query_params["slide"] = slide
    app_test.switch_page("pages/present.py").run()
    assert not app_test.exception
    assert app_test.title[0].value.startswith(f"{shown} ·")
    assert any(notice in w.value for w in app_test.warning)


# --- the real transformer's slides ---------------------------------------------------------------

REAL_SLIDES = {key: n for n, (key, _) in enumerate(SLIDES, start=1) if key.startswith("real")}


def small_real_run(at, seed: int) -> None:
    """The Real model page's settings as a session holds them after a visit: few steps, a seed of this test's own."""
    at.session_state["real_steps"] = 25
    at.session_state["real_seed"] = seed


def open_slide(at, key: str) -> None:
    at.session_state["slide"] = REAL_SLIDES[key]
    at.run()
    assert not at.exception
    assert at.title[0].value == f"{REAL_SLIDES[key]} · {dict(SLIDES)[key]}"


def markdown(at) -> str:
    return " ".join(m.value for m in at.markdown)


def test_the_real_slides_come_after_where_and_before_why_it_matters():
    keys = [key for key, _ in SLIDES]
    assert keys.index("where") + 1 == keys.index("real") == keys.index("real_grid") - 1 == keys.index("real_rank") - 2
    # then the family's: QLoRA, DoRA, which GPU; and last, why it matters
    assert keys.index("real_rank") + 1 == keys.index("real_phi") == keys.index("qlora") - 1
    assert keys.index("qlora") + 1 == keys.index("dora") == keys.index("gpu") - 1
    assert keys.index("gpu") + 1 == keys.index("matters") == len(keys) - 1


def test_the_family_slides_show_the_cores_numbers(app_test):
    from lora_core.gpu import Workload, gigabytes, gpu_estimate
    from lora_core.lora import seed_example
    from lora_core.nf4 import nf4_quantize
    keys = [key for key, _ in SLIDES]
    app_test.query_params["slide"] = str(keys.index("qlora") + 1)
    at = app_test.switch_page("pages/present.py").run()
    assert not at.exception
    W = seed_example().W
    np.testing.assert_array_equal(heatmap_z(figures(at)["W̃_Q (5×3)"]), nf4_quantize(W).dequantized.double().numpy())
    assert "**4.5 bits a weight** instead of 16, on 15 weights in 1 block of up to 64." in markdown(at)
    at.query_params["slide"] = str(keys.index("gpu") + 1)
    at.session_state["slide"] = keys.index("gpu") + 1
    at.run()
    assert not at.exception
    est = gpu_estimate("llama-2-7b", ("q", "v"), 8, Workload(512, 1, True))
    said = markdown(at)
    assert est.methods["full"].total > 80e9
    assert (f"full fine-tuning needs **{gigabytes(est.methods['full'].total):,.1f} GB**, more than any single card "
            "here holds") in said
    assert (f"LoRA, 16-bit base needs **{gigabytes(est.methods['lora'].total):,.1f} GB**, the smallest card here that "
            "holds it is the T4 16 GB") in said
    assert (f"QLoRA, NF4 base needs **{gigabytes(est.methods['qlora'].total):,.1f} GB**, the smallest card here that "
            "holds it is the 8 GB card") in said


def real_settings(seed: int):
    from lora_app.config.real import DEFAULT_LORA, DEFAULTS, LORA_KEYS, real_config
    values = {**DEFAULTS, **{k: t in DEFAULT_LORA for t, k in LORA_KEYS.items()}, "real_steps": 25, "real_seed": seed}
    return real_config(values, None)[0]


def test_the_real_slide_trains_with_its_button_and_shows_the_stored_runs_numbers(at, cold_store):
    from lora_app.compute import real as compute

    small_real_run(at, 4101)
    open_slide(at, "real")
    assert "sorted" not in markdown(at) and "of held-out digits right" not in markdown(at)
    assert any(name.startswith("One sequence") for name in figures(at))  # the base model's answer, before training
    click(at, "Train now")  # the rerun follows the job to its end, then draws the finished slide
    assert not at.exception
    assert not [b for b in at.button if b.label == "Train now"]
    s = real_settings(4101).settings
    lora_run, full_run = compute.run(s), compute.run(compute.full_settings(s))
    assert lora_run is not None and full_run is not None
    words = markdown(at)
    assert f"LoRA gets **{100 * lora_run.accuracy:.1f} %**" in words
    assert f"Full fine-tuning trains all **{full_run.trainable:,}** and gets **{100 * full_run.accuracy:.1f} %**" in words
    assert f"training **{lora_run.trainable:,}** of the model's {lora_run.total:,} numbers" in words
    names = list(figures(at))
    assert any(n.startswith("Training loss and held-out accuracy") for n in names)
    seq = next(spec for n, spec in figures(at).items() if n.startswith("One sequence"))
    assert any("adapted model" in t for t in seq["layout"]["yaxis"]["ticktext"])


def test_a_prepared_run_shows_at_once_without_a_button(at, cold_store):
    from lora_app.compute import jobs
    from lora_app.compute import real as compute

    s = real_settings(4102).settings
    jobs.submit((s, compute.full_settings(s)), "prepared").wait(60)
    small_real_run(at, 4102)
    open_slide(at, "real")
    assert not [b for b in at.button if b.label == "Train now"]
    assert f"**{100 * compute.run(s).accuracy:.1f} %**" in markdown(at)


@pytest.mark.parametrize("key, button, figure", [("real_grid", "Run the grid", "Held-out accuracy at one budget"),
                                                 ("real_rank", "Run the sweep", "Held-out accuracy against the rank")])
def test_an_experiment_slide_runs_its_grid_and_says_what_it_measured(at, cold_store, key, button, figure):
    from lora_app.compute import real as compute
    from lora_app.text import real as real_text

    small_real_run(at, 4103)
    open_slide(at, key)
    assert any(n.startswith(figure) for n in figures(at))  # drawn at once, every cell pending
    cfg = real_settings(4103)
    click(at, button)
    assert not at.exception
    assert not [b for b in at.button if b.label == button]
    if key == "real_grid":
        g = compute.grid_table(cfg)
        assert g.finished == g.total
        sentence = real_text.grid_sentence(g.rows, g.tasks, g.accuracy)
        spec = next(spec for n, spec in figures(at).items() if n.startswith(figure))
        shown = spec["data"][-1]["text"]
        assert shown == [f"{100 * v:.1f} %" for v in g.accuracy.ravel()]
    else:
        sw = compute.sweep_table(cfg)
        assert sw.finished == sw.total
        sentence = real_text.sweep_sentence(sw.ranks, sw.accuracy, sw.full, compute.placement_label(cfg.sweep))
    assert sentence and sentence in markdown(at)


def test_the_phi_slide_trains_the_two_example_runs_and_states_the_cores_comparison(at, cold_store):
    """The slide offers to train the Adapters page's two example runs; once they are on the server it draws φ of
    layers.0.v_proj and the sentence the core's comparison gives."""
    from lora_app.compute import adapters as ad
    from lora_app.text import adapters as ad_text
    from lora_core.adapter import adapters_zip_bytes
    from lora_core.adapters.overview import compare_modules
    from lora_core.upload.many import read_adapter

    open_slide(at, "real_phi")
    assert [b for b in at.button if b.label == "Train the two runs"]
    click(at, "Train the two runs")
    assert not at.exception
    open_slide(at, "real_phi")
    assert any(n.startswith("φ of layers.0.v_proj") for n in figures(at))
    from lora_app.compute import jobs
    runs = [jobs.STORE.get(s) for s in ad.example_settings()]
    files = [read_adapter(adapters_zip_bytes(r.adapters, r=r.settings.r, alpha=r.settings.alpha)) for r in runs]
    comps = compare_modules(files[0].modules(), files[1].modules())
    at_r = [float(c.phi[3, 3]) for c in comps]
    best, worst = int(np.argmax(at_r)), int(np.argmin(at_r))
    sentence = ad_text.compare_sentence(len(comps), float(np.mean(at_r)), (comps[best].name, at_r[best]),
                                        (comps[worst].name, at_r[worst]), float(np.mean([c.cosine for c in comps])))
    assert sentence in markdown(at)
