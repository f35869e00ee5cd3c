"""Every page, and each of its parts, at the largest sizes its controls allow: python bench/bench_limits.py

Through AppTest (the whole script: app.py and the page), cold (every cache cleared, then the first
run of that part) and warm (median of reruns with the caches filled). The sidebar is at its
largest: n = 64, d = k = 1024, r = 1024 (r ≤ min(d, k)). Page controls at their largest too:
Family at 1,000 steps (the comparison trains fewer where its step model says they would take too long);
Attention with every adapter on (heads ≤ 1024 / k, so 1 head at k = 1024; also 4 heads at
k = 256), Scale on GPT-3 with every target at r = 256, Training at its default 300 steps or at the
largest run the page offers there, Present on every slide. Scale's live "Measure" benchmark is a
timing the user asks for and is left out. A benchmark, not a timed test: it prints a table.

    python bench/bench_limits.py [--warm N] [--cold N] [--pages training,rank] [--profile "rank:error;training:loss"]
"""
from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import os
import pstats
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("LORA_DEVICE", "cpu")

from streamlit.testing.v1 import AppTest

from helpers import keep_navigation_mode

PAGES = ("explore", "training", "family", "attention", "rank", "scale", "present")


def sections(page: str) -> dict[str, str]:
    from lora_app import text
    return {"explore": text.explore.EXPLORE_SECTIONS, "training": text.training.SECTIONS, "family": text.family.SECTIONS,
            "attention": text.attention.SECTIONS, "rank": text.rank.SECTIONS}.get(page, {})


def clear_caches() -> None:
    import streamlit as st
    st.cache_data.clear()
    st.cache_resource.clear()


def fresh_app() -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600).run()
    at.select_slider(key="d").set_value(1024).run()
    at.select_slider(key="k").set_value(1024).run()
    at.slider(key="n").set_value(64).run()
    at.slider(key="r").set_value(1024).run()
    return at


def timed_run(at) -> float:
    t0 = time.perf_counter()
    at.run()
    return time.perf_counter() - t0


def problems(at) -> str:
    if at.exception:
        return "EXCEPTION: " + at.exception[0].value.splitlines()[0][:60]
    for kind, items in (("error", at.error), ("warning", at.warning)):
        if len(items):
            return f"{kind}: " + items[0].value.splitlines()[0][:60]
    return ""


@contextlib.contextmanager
def profiled_script(prof):
    """Profile the script thread (AppTest runs the page in a thread of its own) while the block runs."""
    if prof is None:
        yield
        return
    from streamlit.runtime.scriptrunner.script_runner import ScriptRunner
    original = ScriptRunner._run_script

    def run(self, *args, **kwargs):
        prof.enable()
        try:
            return original(self, *args, **kwargs)
        finally:
            prof.disable()
    ScriptRunner._run_script = run
    try:
        yield
    finally:
        ScriptRunner._run_script = original


def variants(page: str):
    """(label, setup(at)) for each part of a page at its largest settings."""
    def part(slug):
        def open_part(at):
            at.session_state[f"view_{page}"] = sections(page)[slug]
            at.session_state[f"_url_loaded_view_{page}"] = True  # or the URL's view (another page's) wins
        return open_part

    if page == "present":
        from lora_app.config.present import SLIDES
        return [(f"slide {i}", (lambda i: lambda at: at.session_state.__setitem__("slide", i))(i))
                for i in range(1, len(SLIDES) + 1)]
    if page == "scale":
        def biggest(at):
            at.session_state["model"] = "gpt3-175b"
            from lora_core.scale import TARGETS
            at.session_state["targets"] = list(TARGETS)
            at.session_state["scale_r"] = 256
        return [("GPT-3, every target, r = 256", biggest)]
    out = []
    for slug in sections(page):
        if page == "family":
            def longest(at, slug=slug):  # the most steps the page offers; the comparison caps them by its step model
                at.session_state["fam_steps"] = 1000
                part(slug)(at)
            out.append((slug, longest))
        elif page == "attention":
            def every(at, slug=slug):
                for key in ("lora_q", "lora_k", "lora_v", "lora_o", "lora_ffn"):
                    at.session_state[key] = True
                part(slug)(at)
            out.append((slug, every))
        else:
            out.append((slug, part(slug)))
    if page == "training":
        def largest(at):
            from lora_app.compute.training import max_steps_for
            at.session_state["steps"] = min(300, max_steps_for(64, 1024, 1024, 1024))
        out += [(f"{slug}, largest run offered", (lambda slug: lambda at: (largest(at), part(slug)(at)))(slug))
                for slug in sections(page)]

        def last_step(stage):
            def setup(at):
                largest(at)
                part("step")(at)
                at.session_state["step"], at.session_state["stage"] = max(1, at.session_state["steps"]), stage
            return setup
        out += [(f"step, last step, {stage}", last_step(stage)) for stage in ("forward", "backward", "adamw", "update")]
    return out


def bench_page(page: str, warm_repeats: int, cold_repeats: int, profile: set[str]) -> list:
    rows = []
    for label, setup in variants(page):
        at = fresh_app()
        at.switch_page(f"pages/{page}.py").run()  # the page's own state seeded (from the URL) on its first visit
        setup(at)
        clear_caches()
        prof = cProfile.Profile() if f"{page}:{label}" in profile else None
        with profiled_script(prof):
            cold = timed_run(at)
        colds = [cold]
        for _ in range(cold_repeats - 1):
            clear_caches()
            colds.append(timed_run(at))
        cold = statistics.median(colds)
        if prof:
            for order in ("cumulative", "tottime"):
                out = io.StringIO()
                pstats.Stats(prof, stream=out).sort_stats(order).print_stats(20)
                print(f"--- profile, {page}: {label}, cold, by {order}\n{out.getvalue()}")
        note = problems(at)
        warm = statistics.median(timed_run(at) for _ in range(warm_repeats))
        rows.append((page, label, cold, warm, note or problems(at)))
        print(f"{page:<10}| {label:<34}| {cold:7.2f} s | {warm:7.2f} s | {note}", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--warm", type=int, default=3, help="warm reruns per part (median)")
    parser.add_argument("--pages", default=",".join(PAGES))
    parser.add_argument("--cold", type=int, default=1, help="cold runs per part (median), caches cleared before each")
    parser.add_argument("--profile", default="", help="page:part pairs to profile (cProfile), separated by ;")
    args = parser.parse_args()
    keep_navigation_mode()
    import torch
    print(f"AppTest script time at n = 64, d = k = 1024, r = 1024; cold = caches cleared, warm = median of "
          f"{args.warm} reruns, cold median of {args.cold} (LORA_DEVICE={os.environ['LORA_DEVICE']}, torch threads {torch.get_num_threads()})")
    print(f"{'page':<10}| {'part':<34}| {'cold':>9} | {'warm':>9} | note")
    print("-" * 80)
    rows = []
    for page in args.pages.split(","):
        rows += bench_page(page, args.warm, args.cold, set(filter(None, args.profile.split(";"))))
    slow = [r for r in rows if max(r[2], r[3]) > 2.0]
    print(f"\n{len(rows)} parts, {len(slow)} over 2 s" + "".join(f"\n  {p}: {label} (cold {c:.2f} s, warm {w:.2f} s)"
                                                          for p, label, c, w, _ in slow))


if __name__ == "__main__":
    main()
