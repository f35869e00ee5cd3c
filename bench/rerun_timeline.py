"""Run ``streamlit`` with a timestamp on every stage of every rerun, inside the server.

    LORA_TIMELINE_OUT=/tmp/timeline.txt python bench/rerun_timeline.py run app.py --server.headless true ...

or as ``helpers.start_streamlit(..., launcher=["bench/rerun_timeline.py"])`` (bench/class_load.py's
students then drive it). Every 10 s it writes, per stage of a rerun, the count, mean and p95 in ms:
the rerun message on the event loop (recv) → the script thread starts (thread) → Streamlit's
``_run_script`` (runscript) → ``clear_session_refs`` (cleared) → ``SCRIPT_STARTED`` (started) →
``new_session`` queued on the event loop (enq) → ``new_session`` sent (sent); then the server's CPU
share, the media manager's sizes and the event loop thread's most common stacks (sampled 50×/s).
``LORA_TIMELINE_SWITCH`` sets ``sys.setswitchinterval``.

Found the class's lock-step in issue 13 (docs/PERFORMANCE.md, "Lock-step"): the event loop late by
hundreds of ms, and the runs per window 100 or 50, never between. A diagnostic, not a benchmark.
It patches private Streamlit 1.67 functions.
"""
import collections
import os
import sys
import threading
import time
import traceback

OUT = os.environ.get("LORA_TIMELINE_OUT", "rerun_timeline.txt")
STAGES = ("thread", "runscript", "cleared", "started", "enq", "sent")
_lock = threading.Lock()
_pending: dict[str, dict[str, float]] = {}          # session id -> this rerun's stage times
_window: dict[str, list[float]] = collections.defaultdict(list)   # "a->b" -> seconds, this window
_stacks: collections.Counter = collections.Counter()  # the event loop thread's stacks, this window


def mark(session_id: str, stage: str) -> None:
    """Record ``stage`` of ``session_id``'s current rerun; at "sent", add its stage-to-stage times to the window."""
    t = time.monotonic()
    with _lock:
        if stage == "recv":
            _pending[session_id] = {"recv": t}
            return
        d = _pending.get(session_id)
        if d is None or stage in d:
            return
        d[stage] = t
        if stage != "sent":
            return
        prev = "recv"
        for s in STAGES:
            if s in d:
                _window[f"{prev}->{s}"].append(d[s] - d[prev])
                prev = s
        _window["total"].append(t - d["recv"])
        del _pending[session_id]


def _sample_loop_thread() -> None:
    main = threading.main_thread().ident  # streamlit's event loop runs on the main thread
    while True:
        time.sleep(0.02)
        frame = sys._current_frames().get(main)
        if frame is None:
            continue
        top = reversed(traceback.extract_stack(frame)[-5:])
        key = " < ".join(f"{os.path.basename(f.filename)}:{f.lineno}:{f.name}" for f in top)
        with _lock:
            _stacks[key] += 1


def _report() -> None:
    out = open(OUT, "w")
    t0, cpu0 = time.monotonic(), time.process_time()
    threading.Thread(target=_sample_loop_thread, daemon=True, name="timeline-sampler").start()
    while True:
        time.sleep(10)
        cpu = time.process_time()
        with _lock:
            window, top = dict(_window), _stacks.most_common(6)
            _window.clear()
            _stacks.clear()
        line = f"{time.monotonic() - t0:6.0f} s  cpu {100 * (cpu - cpu0) / 10:.0f}%  threads {threading.active_count()}  "
        cpu0 = cpu
        for name, v in window.items():
            v = sorted(v)
            line += f"{name}: n={len(v)} mean={1000 * sum(v) / len(v):.0f} p95={1000 * v[int(0.95 * (len(v) - 1))]:.0f}  "
        try:
            from streamlit.runtime import Runtime
            m = Runtime.instance().media_file_mgr
            line += (f"media files {len(m._file_metadata)} deferred {len(m._deferred_callables)} "
                     f"sessions {len(m._files_by_session_and_coord)}")
        except Exception as exc:  # noqa: BLE001 - a diagnostic line, not the server's health
            line += f"media ? {exc}"
        out.write(line + "\n")
        out.writelines(f"      {n:4d} {stack}\n" for stack, n in top)
        out.flush()


def install() -> None:
    from streamlit.runtime import app_session, media_file_manager, runtime
    from streamlit.runtime.scriptrunner import ScriptRunnerEvent, script_runner
    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    session, runner, media = app_session.AppSession, script_runner.ScriptRunner, media_file_manager.MediaFileManager
    handle, thread, run = session.handle_backmsg, runner._run_script_thread, runner._run_script
    clear, enqueue, on_event, send = (media.clear_session_refs, session._enqueue_forward_msg,
                                      session._on_scriptrunner_event, runtime.Runtime._send_message)

    def handle_backmsg(self, msg):
        if msg.WhichOneof("type") == "rerun_script":
            mark(self.id, "recv")
        return handle(self, msg)

    def run_script_thread(self):
        mark(self._session_id, "thread")
        return thread(self)

    def run_script(self, rerun_data):
        mark(self._session_id, "runscript")
        return run(self, rerun_data)

    def clear_session_refs(self, session_id=None):
        result = clear(self, session_id)
        ctx = get_script_run_ctx(suppress_warning=True)
        if ctx is not None:
            mark(ctx.session_id, "cleared")
        return result

    def enqueue_forward_msg(self, msg):
        if msg.WhichOneof("type") == "new_session":
            mark(self.id, "enq")
        return enqueue(self, msg)

    def on_scriptrunner_event(self, sender, event, **kwargs):
        if event == ScriptRunnerEvent.SCRIPT_STARTED:
            mark(self.id, "started")
        return on_event(self, sender, event, **kwargs)

    def send_message(self, info, msg):
        if msg.WhichOneof("type") == "new_session":
            mark(info.session.id, "sent")
        return send(self, info, msg)

    session.handle_backmsg, session._enqueue_forward_msg = handle_backmsg, enqueue_forward_msg
    session._on_scriptrunner_event = on_scriptrunner_event
    runner._run_script_thread, runner._run_script = run_script_thread, run_script
    media.clear_session_refs, runtime.Runtime._send_message = clear_session_refs, send_message


if __name__ == "__main__":
    if os.environ.get("LORA_TIMELINE_SWITCH"):
        sys.setswitchinterval(float(os.environ["LORA_TIMELINE_SWITCH"]))
    install()
    threading.Thread(target=_report, daemon=True, name="timeline-report").start()
    from streamlit.web.cli import main
    sys.argv = ["streamlit", *sys.argv[1:]]
    main()
