"""Bad load: one misbehaving client against a handful of well-behaved students, over Streamlit's protocol.

The server (``streamlit run app.py``) runs on core 0, the students and the bad client on core 1 (the
bad client in a process of its own, so its work does not slow the students' event loop). The students
are class_load's Explore students (bench/class_load.py: their own links, their own numbers checked
after every interaction), with a short think time so that a phase of 20 s gives enough interactions
for a p95. Each scenario has two phases on one fresh server: the students alone ("idle"), then the
same students while the bad client runs. The misbehaviours:

- ``never-read``: 500 websockets, each sends one rerun of the page (a first visit) and never reads a
  byte again (a 4 KiB receive buffer), so the server's sends back up;
- ``flood``: 3 sessions that each send a rerun with a new slider value every millisecond, reading
  (and dropping) what comes back.

    python bench/bad_load.py                         # both, with the app's protections
    python bench/bad_load.py --unprotected           # both, with LORA_PACE_RATE=0 LORA_MAX_SESSIONS=0
    python bench/bad_load.py --largest               # the largest ForwardMsg of Explore at n = 64, d = k = r = 1024

Ports 8950-8999 only. Prints a table; ``--json FILE`` writes the rows.
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import psutil
from class_load import make_student, pct
from stclient import Session
from streamlit.proto.BackMsg_pb2 import BackMsg

SERVER_CORE, CLIENT_CORE = 0, 1
PORTS = range(8950, 9000)
UNPROTECTED = {"LORA_PACE_RATE": "0", "LORA_MAX_SESSIONS": "0", "LORA_ARRIVAL_RATE": "0", "LORA_RERUN_RATE": "0",
               "LORA_CONNECT_RATE": "0"}


# --- the server --------------------------------------------------------------------------------------

def free_port() -> int:
    for port in random.sample(list(PORTS), len(PORTS)):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 8950-8999")


def start_server(log: Path, env: dict | None = None, args: list[str] = ()) -> tuple[subprocess.Popen, str]:
    """``streamlit run app.py`` on core 0 (when there are two cores), on a port of 8950-8999."""
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port",
           str(port), "--server.address", "127.0.0.1", *args]
    pin = os.cpu_count() >= 2
    if pin:
        os.sched_setaffinity(0, {SERVER_CORE})
    try:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                                env={**os.environ, "LORA_DEVICE": "cpu", **(env or {})})
    finally:
        if pin:
            os.sched_setaffinity(0, {CLIENT_CORE})
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while not healthy(url):
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise RuntimeError(f"streamlit did not start; see {log}")
        time.sleep(0.3)
    return proc, url


def healthy(url: str, timeout: float = 5) -> bool:
    try:
        return urllib.request.urlopen(f"{url}/_stcore/health", timeout=timeout).read() == b"ok"
    except OSError:
        return False


# --- the bad clients ---------------------------------------------------------------------------------

def first_rerun(url: str, query: str = "view=q") -> bytes:
    """The BackMsg a browser sends first: run the main page with this query string."""
    msg = BackMsg()
    rs = msg.rerun_script
    rs.query_string, rs.page_script_hash, rs.page_name = query, "", ""
    ci = rs.context_info
    ci.timezone, ci.timezone_offset, ci.locale, ci.url = "UTC", 0, "en-US", f"{url}/?{query}"
    return msg.SerializeToString()


def ws_frame(payload: bytes) -> bytes:
    """One masked binary websocket frame, as a client must send it."""
    n = len(payload)
    head = b"\x82" + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + struct.pack("!H", n) if n < 65536
                      else bytes([0x80 | 127]) + struct.pack("!Q", n))
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def never_reader(url: str, n: int, hold_s: float, query: str) -> dict:
    """Open ``n`` websockets, send each one rerun, then read nothing; hold them ``hold_s`` seconds."""
    host = url.split("//", 1)[1]
    h, port = host.split(":")
    frame = ws_frame(first_rerun(url, query))
    socks, failed = [], 0
    t0 = time.monotonic()
    for _ in range(n):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(30)
        try:
            s.connect((h, int(port)))
            key = base64.b64encode(os.urandom(16)).decode()
            s.sendall((f"GET /_stcore/stream HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                       f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: streamlit\r\n\r\n")
                      .encode())
            got = b""
            while b"\r\n\r\n" not in got:  # the 101, then nothing more is ever read
                chunk = s.recv(1)
                if not chunk:
                    raise OSError("closed during the handshake")
                got += chunk
            if b" 101 " not in got.split(b"\r\n", 1)[0]:
                raise OSError(got.split(b"\r\n", 1)[0].decode(errors="replace"))
            s.sendall(frame)
            socks.append(s)
        except OSError:
            failed += 1
            s.close()
    opened_s = time.monotonic() - t0
    time.sleep(max(0.0, hold_s - opened_s))
    alive = 0
    for s in socks:  # a socket the server closed reads as EOF once its buffered bytes are drained
        s.setblocking(False)
        try:
            while True:
                chunk = s.recv(1 << 16)
                if not chunk:
                    break
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
        s.close()
    return {"opened": len(socks), "failed": failed, "open_s": round(opened_s, 1), "still_open": alive}


async def flooder(url: str, sessions: int, hold_s: float, interval_s: float) -> dict:
    """``sessions`` sessions that each send a rerun with a new value of n every ``interval_s``.

    A session the server closes is opened again at once (a new session, as a script would), until ``hold_s``.
    """
    sent, opened, closed = [0], [0], [0]
    until = time.monotonic() + hold_s

    async def drain(sess):  # read and drop: the flood is of reruns, not of unread messages
        try:
            async for _ in sess.ws:
                pass
        except Exception:  # noqa: BLE001 - a socket the server closed ends the drain, whatever it raised
            pass

    async def flood_one(i):
        try:
            sess = await Session.open(url, "/", f"seed={900 + i}&view=q", screen=None, timeout=30)
        except Exception:  # noqa: BLE001 - a server that refuses a flooder is the outcome measured, not an error
            await asyncio.sleep(0.5)
            return
        opened[0] += 1
        if sess.figures() == {}:  # refused (the server is full or busy): nothing to flood
            await sess.close()
            await asyncio.sleep(0.5)
            return
        sess._reader.cancel()
        reader = asyncio.create_task(drain(sess))
        w = sess.widget("n")
        others = [st for wid, st in sess._states.items() if wid in sess.widgets and wid != w.id]
        v = 0
        while time.monotonic() < until and not reader.done():
            msg = BackMsg()
            rs = msg.rerun_script
            rs.query_string, rs.page_script_hash = sess.query_string, sess.page_script_hash
            rs.widget_states.widgets.extend(others)
            rs.widget_states.widgets.append(w.encode(2 + v % 7))
            v += 1
            try:
                await sess.ws.send(msg.SerializeToString())
            except Exception:  # noqa: BLE001 - a cut-off socket ends this flooder, whatever it raised
                break
            sent[0] += 1
            await asyncio.sleep(interval_s)
        if reader.done():
            closed[0] += 1
        await sess.ws.close()
        reader.cancel()

    async def flood(i):
        while time.monotonic() < until:
            await flood_one(i)

    await asyncio.gather(*(flood(i) for i in range(sessions)))
    return {"sessions": sessions, "opened": opened[0], "closed_by_server": closed[0], "reruns_sent": sent[0],
            "per_s": round(sent[0] / hold_s)}


def bad_process(url: str, kind: str, hold_s: float, out: Path, n: int = 500, query: str = "view=q") -> subprocess.Popen:
    return subprocess.Popen([sys.executable, __file__, "--bad", kind, "--url", url, "--hold", str(hold_s),
                             "--n", str(n), "--query", query, "--bad-out", str(out)], cwd=ROOT)


# --- the students and the phases ----------------------------------------------------------------------

async def student(st, url: str, until: list[float], think: tuple[float, float], start_delay: float, record: list) -> None:
    """One student for the whole scenario: opens once, then interacts until ``until[0]`` (the scenario may move it);
    (time, latency) into ``record``."""
    await asyncio.sleep(start_delay)
    path, query = st.path_query()
    try:
        sess = await Session.open(url, path, query, timeout=120)
    except Exception as exc:  # noqa: BLE001 - a student that cannot connect is counted as an error, not a crash
        st.errors.append(f"open: {exc}")
        return
    try:
        while time.monotonic() < until[0]:
            await asyncio.sleep(st.rng.uniform(*think))
            key, value = st.next_move()
            try:
                res = await sess.set_widget(key, value)
            except Exception as exc:  # noqa: BLE001 - a failed move is counted as an error, not a crash
                st.errors.append(f"{key}={value}: {exc}")
                break
            record.append((time.monotonic(), res.latency_s))
            st.errors += [f"exception: {e}" for e in res.exceptions]
            problem = st.check(sess)
            if problem:
                st.bleed += 1
                st.errors.append(f"{key}={value}: {problem}")
        st.errors += [f"protocol: {e}" for e in sess.errors]
    finally:
        await sess.close()


def summary(record: list, t0: float, t1: float) -> dict:
    lat = [x for t, x in record if t0 <= t < t1]
    return {"interactions": len(lat), "p50": pct(lat, 50), "p95": pct(lat, 95), "max": max(lat, default=float("nan"))}


async def scenario(kind: str, *, protected: bool, students: int, duration: float, think, seed: int,
                   log_dir: Path, n_bad: int = 500, query: str = "view=q", after: float = 0) -> dict:
    """A fresh server; the students open, interact alone for ``duration`` s, then as long again with the bad client.

    ``after`` > 0: then alone again for that long, 3 s after the bad client has gone ("after" in the result):
    on a shared machine, the idle p95 before and after bound what the machine itself did meanwhile. The
    bad client may outlast ``duration`` (the server lets its sockets in at its own pace): "after" waits for it.
    """
    log = log_dir / f"bad_load_{kind}_{'on' if protected else 'off'}.log"
    proc, url = start_server(log, env=None if protected else UNPROTECTED)
    ps = psutil.Process(proc.pid)
    try:
        warm = await Session.open(url, "/", "view=q", screen=None, timeout=120)  # the first run imports everything
        await warm.close()
        group = [make_student(i, seed, "explore") for i in range(students)]
        record, rss = [], []
        t0 = time.monotonic()
        t_idle, t_bad = t0 + 3, t0 + 3 + duration
        t_end = [t_bad + duration + (3 + after if after else 0)]
        t_after = t_bad + duration + 3
        tasks = [asyncio.create_task(student(st, url, t_end, think, 2 * i / students, record))
                 for i, st in enumerate(group)]
        bad_out = log_dir / f"bad_{kind}.json"
        bad_out.unlink(missing_ok=True)
        bad = None
        while time.monotonic() < t_end[0]:
            if bad is None and time.monotonic() >= t_bad - 0.5:
                bad = bad_process(url, kind, duration + 2, bad_out, n=n_bad, query=query)
            if after and bad is not None and bad.poll() is None and time.monotonic() >= t_after - 3:
                t_after = time.monotonic() + 3  # the bad client is still at it: alone again only once it has gone
                t_end[0] = t_after + after
            try:
                rss.append((time.monotonic(), ps.memory_info().rss))
            except psutil.Error:
                break
            await asyncio.sleep(0.5)
        await asyncio.gather(*tasks)
        bad.wait(timeout=duration + 180)
        up = proc.poll() is None and healthy(url)
        rss_after = ps.memory_info().rss / 2 ** 20 if up else float("nan")
        text = log.read_text(errors="replace")
        idle, under = summary(record, t_idle, t_bad), summary(record, t_bad + 0.5, t_bad + duration)
        after_ = summary(record, t_after, t_end[0] + 60) if after else None
        return {"kind": kind, "protected": protected, "students": students, "idle": idle, "under": under,
                "after": after_,
                "errors": sum(len(st.errors) for st in group), "bleed": sum(st.bleed for st in group),
                "error_examples": [e for st in group for e in st.errors][:4],
                "bad": json.loads(bad_out.read_text()) if bad_out.exists() else None,
                "server_up": up, "rss_idle_peak_mib": max((r for t, r in rss if t < t_bad), default=0) / 2 ** 20,
                "rss_peak_mib": max((r for _, r in rss), default=0) / 2 ** 20, "rss_after_mib": rss_after,
                "not_run_unread": text.count("unread messages was not run"),
                "ratio_p95": under["p95"] / idle["p95"]}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


async def largest_message(d: int = 1024) -> dict:
    from lora_core import MAX_N
    """The largest ForwardMsg frame a run of Explore sends at d = k = ``d`` (every part of the page opened)."""
    log = Path("/tmp/bad_load_largest.log")
    proc, url = start_server(log)
    sizes = []
    try:
        import stclient
        orig = stclient.Session._handle

        def _handle(self, msg):
            sizes.append((msg.ByteSize(), msg.WhichOneof("type"),
                          msg.delta.new_element.WhichOneof("type") if msg.WhichOneof("type") == "delta" else ""))
            return orig(self, msg)
        stclient.Session._handle = _handle
        out = {}
        for view in ("matrices", "update", "q", "cell", "count"):
            sizes.clear()
            sess = await Session.open(url, "/", f"n={MAX_N}&d={d}&k={d}&r={d}&view={view}", screen=None, timeout=600)
            await sess.close()
            out[view] = max(sizes) if sizes else None
        return out
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def table(rows: list[dict]) -> str:
    lines = ["| misbehaviour | protections | students | idle: interactions / p50 / p95 | under: interactions / p50 / p95 / max "
             "| p95 ratio | alone after: p95 | errors / bleed | bad client | server up | RSS idle peak → peak → after (MiB) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        i, u = r["idle"], r["under"]
        lines.append(f"| {r['kind']} | {'on' if r['protected'] else 'off'} | {r['students']} | {i['interactions']} / "
                     f"{1000 * i['p50']:.0f} / {1000 * i['p95']:.0f} ms | {u['interactions']} / {1000 * u['p50']:.0f} / "
                     f"{1000 * u['p95']:.0f} / {1000 * u['max']:.0f} ms | {r['ratio_p95']:.2f} | "
                     f"{'%.0f ms' % (1000 * r['after']['p95']) if r.get('after') else '-'} | "
                     f"{r['errors']} / {r['bleed']} | {r['bad']} | {'yes' if r['server_up'] else 'NO'} | "
                     f"{r['rss_idle_peak_mib']:.0f} → {r['rss_peak_mib']:.0f} → {r['rss_after_mib']:.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kinds", nargs="+", default=["never-read", "flood"])
    ap.add_argument("--unprotected", action="store_true", help="LORA_PACE_RATE=0 LORA_MAX_SESSIONS=0")
    ap.add_argument("--both", action="store_true", help="each scenario with and without the protections")
    ap.add_argument("--students", type=int, default=8)
    ap.add_argument("--duration", type=float, default=20)
    ap.add_argument("--think", type=float, nargs=2, default=(0.5, 1.5))
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--n", type=int, default=500, help="never-read: websockets to open")
    ap.add_argument("--query", default="view=q", help="never-read: the link each opens")
    ap.add_argument("--after", type=float, default=10, help="seconds alone again after the bad client (0: none)")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--largest", action="store_true")
    # the bad client's own process
    ap.add_argument("--bad", choices=["never-read", "flood"])
    ap.add_argument("--url")
    ap.add_argument("--hold", type=float, default=25)
    ap.add_argument("--bad-out", type=Path)
    a = ap.parse_args()
    if a.bad:
        if a.bad == "never-read":
            res = never_reader(a.url, a.n, a.hold, a.query)
        else:
            res = asyncio.run(flooder(a.url, 3, a.hold, 0.001))
        a.bad_out.write_text(json.dumps(res))
        return
    if os.cpu_count() >= 2:
        os.sched_setaffinity(0, {CLIENT_CORE})
    if a.largest:
        print(json.dumps(asyncio.run(largest_message()), indent=1))
        return
    rows = []
    modes = [True, False] if a.both else [not a.unprotected]
    for kind in a.kinds:
        for protected in modes:
            r = asyncio.run(scenario(kind, protected=protected, students=a.students, duration=a.duration,
                                     think=tuple(a.think), seed=a.seed, log_dir=Path("/tmp"), n_bad=a.n, query=a.query,
                                     after=a.after))
            rows.append(r)
            print(table([r]).splitlines()[-1], flush=True)
    print(table(rows))
    if a.json:
        a.json.write_text(json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    main()
