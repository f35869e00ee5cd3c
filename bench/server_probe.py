"""Run ``streamlit`` with a probe thread beside it: where the server's threads stand, and what its heap holds.

    LORA_PROBE_OUT=/tmp/probe.txt python bench/server_probe.py run app.py --server.headless true ...

or as ``helpers.start_streamlit(..., launcher=["bench/server_probe.py"])``. Every 0.05 s the probe
samples every thread's stack (``sys._current_frames``); every ``LORA_PROBE_EVERY`` seconds (20) it
writes the most common stacks of that window. With ``LORA_PROBE_OBJECTS=1`` it also writes the
server's object count by type at each window (``gc.get_objects``; holds the GIL for ~0.05 s).

Found three things in issue 13 (docs/PERFORMANCE.md, "A class on one server"):
- the stale widgets' metadata kept by Streamlit (object counts; fixed by ``lora_app.server.widget_gc``);
- the per-key locks kept by Streamlit's caches (object counts: ``_thread.lock``; fixed by ``lora_app.server.cache_locks``);
- the script threads waiting on ``MediaFileManager._lock`` when a class's latency plateaus (stacks): a
  symptom of the class's lock-step, which ``bench/rerun_timeline.py`` then found (``lora_app.server.run_gate``).
A diagnostic, not a benchmark: it prints no figure of merit.
"""
import collections
import gc
import os
import sys
import threading
import time
import traceback


def _probe() -> None:
    out = open(os.environ.get("LORA_PROBE_OUT", "server_probe.txt"), "w")
    every = float(os.environ.get("LORA_PROBE_EVERY", "20"))
    objects = os.environ.get("LORA_PROBE_OBJECTS") == "1"
    t0 = last = time.monotonic()
    window, samples = collections.Counter(), 0
    me = threading.get_ident()
    while True:
        time.sleep(0.05)
        names = {t.ident: t.name for t in threading.enumerate()}
        for ident, frame in sys._current_frames().items():
            if ident != me:
                top = reversed(traceback.extract_stack(frame)[-6:])
                window[names.get(ident, "?")[:20] + " | " + " < ".join(
                    f"{os.path.basename(f.filename)}:{f.lineno}:{f.name}" for f in top)] += 1
        samples += 1
        now = time.monotonic()
        if now - last < every:
            continue
        out.write(f"=== {now - t0:.0f} s, {samples} samples\n")
        out.writelines(f"{n:5d} {stack}\n" for stack, n in window.most_common(25))
        if objects:
            by_type = collections.Counter(type(o).__module__ + "." + type(o).__qualname__ for o in gc.get_objects())
            out.write(f"--- objects {sum(by_type.values())}: {by_type.most_common(30)}\n")
        out.flush()
        window, samples, last = collections.Counter(), 0, now


if __name__ == "__main__":
    threading.Thread(target=_probe, daemon=True, name="server-probe").start()
    from streamlit.web.cli import main
    sys.argv = ["streamlit", *sys.argv[1:]]
    main()
