"""Replicas behind Debian's nginx on loopback: a class through the proxy, a replica lost, runs shared.

deploy/replicas.py starts three ``streamlit run app.py`` replicas and nginx configured from
deploy/nginx.conf itself (the file compose uses). Students are protocol sessions (bench/stclient.py),
each with its own cookie, all from one IP address as behind a school's NAT. nginx's X-Replica header
names the replica of each request and of each websocket handshake.

Marked ``replicas``: the default run skips it; CI runs ``python -m pytest -m replicas``.
"""
from __future__ import annotations

import asyncio
import random
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "deploy"))
sys.path.insert(0, str(ROOT / "bench"))

from replicas import NGINX_CONF, Replicas, find_nginx, loopback_conf  # noqa: E402 - after deploy/ is put on sys.path

from helpers import run_async  # noqa: E402 - after bench/ is put on sys.path

pytestmark = [pytest.mark.replicas,
              pytest.mark.skipif(find_nginx() is None, reason="needs Debian's nginx: apt-get install nginx")]

PORT = 8850               # nginx; the replicas take 8851-8853
STUDENTS = 18
INTERACTIONS = 4
COOKIE = "lora_replica"
OK = "FINISHED_SUCCESSFULLY"


# --- a student: its own cookie jar, its own link, the replica nginx chose ---------------------

def http_get(url: str, cookie: str | None = None) -> tuple[int, dict, bytes]:
    req = urllib.request.Request(url, headers={"Cookie": f"{COOKIE}={cookie}"} if cookie else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}, r.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


def served_by(headers: dict) -> str:
    """The replica that answered: the last of X-Replica's list (the ones before it failed)."""
    return headers["x-replica"].split(",")[-1].strip()


def proxy_session_class(cookie: str):
    """stclient's Session whose websocket handshake sends the student's cookie and keeps nginx's X-Replica."""
    import websockets
    from stclient import Session, SessionError

    class StudentSession(Session):
        handshake_replica: str | None = None

        async def connect(self) -> None:
            u = urllib.parse.urlsplit(self.base_url)
            url = f"ws://{u.netloc}/_stcore/stream"
            try:
                self.ws = await websockets.connect(
                    url, subprotocols=["streamlit"], max_size=2 ** 27, compression=None, open_timeout=self.timeout,
                    ping_interval=None, close_timeout=2, additional_headers={"Cookie": f"{COOKIE}={cookie}"})
            except (TimeoutError, OSError, websockets.InvalidHandshake) as exc:
                raise SessionError(f"cannot connect to {url}: {exc}") from exc
            self.handshake_replica = served_by({k.lower(): v for k, v in self.ws.response.headers.raw_items()})
            self._reader = asyncio.create_task(self._read())

    return StudentSession


class Student:
    """One student on Explore with a link of their own: preset random, their own seed and sizes."""

    def __init__(self, i: int, rng: random.Random):
        self.i = i
        self.state = {"preset": "random", "seed": 1000 + i, "n": 2 + i % 4, "d": 3 + i % 5, "k": 2 + i % 3, "r": 1 + i % 2}
        self.cookie: str | None = None
        self.replica: str | None = None
        self.session = None
        self.link = urllib.parse.urlencode(self.state)
        self.think = [rng.uniform(0.2, 1.0) for _ in range(INTERACTIONS + 2)]
        self.problems: list[str] = []
        self.results = []

    async def load(self, url: str) -> None:
        """The page, then what the frontend fetches, then the websocket: all must reach one replica."""
        status, headers, _ = await asyncio.to_thread(http_get, f"{url}/?{self.link}", self.cookie)
        assert status == 200, f"student {self.i}: page load answered {status}"
        if self.cookie is None:
            m = re.match(rf"{COOKIE}=([0-9a-f]+);", headers.get("set-cookie", ""))
            assert m, f"student {self.i}: nginx set no affinity cookie: {headers}"
            self.cookie = m.group(1)
        else:
            assert "set-cookie" not in headers, "a browser that has the cookie is not given another"
        replica = served_by(headers)
        status, headers, _ = await asyncio.to_thread(http_get, f"{url}/_stcore/host-config", self.cookie)
        assert status == 200 and served_by(headers) == replica, \
            f"student {self.i}: page from {replica}, host-config from {headers.get('x-replica')}"
        self.session = await proxy_session_class(self.cookie).open(url, "/", self.link)
        assert self.session.handshake_replica == replica, \
            f"student {self.i}: page from {replica}, websocket to {self.session.handshake_replica}"
        self.replica = replica
        self.check("after loading")

    def check(self, when: str) -> None:
        """The numbers on screen are this student's own: X and A_Q as lora_core builds them from their link."""
        from helpers import heatmap_z
        from lora_core.example import build_example

        s = self.state
        ex = build_example(s["preset"], s["seed"], s["n"], s["d"], s["k"], s["r"])
        figs = self.session.figures()
        for name, want in (("X", ex.X), ("A_Q", ex.A)):
            title = f"{name} ({want.shape[0]}×{want.shape[1]})"
            if title not in figs:
                self.problems.append(f"student {self.i} {when}: no figure {title}; got {sorted(figs)}")
            elif not np.allclose(heatmap_z(figs[title]), want.numpy(), rtol=0, atol=1e-9):
                self.problems.append(f"student {self.i} {when}: {title} holds numbers that are not theirs")
        # the URL the server wrote (page_info_changed), when one came: it holds the student's own values.
        # (Now and then no page_info_changed reaches the protocol client at all; the numbers are checked above.)
        got = dict(urllib.parse.parse_qsl(self.session.query_string))
        if self.session.query_string != self.link and any(got.get(k) != str(v) for k, v in s.items()):
            self.problems.append(f"student {self.i} on {self.replica} {when}: link {self.session.query_string} is not {s}")
        self.link = urllib.parse.urlencode(s)   # the link in the student's address bar: their own controls
        errors = [body for fmt, body in self.session.alerts() if fmt == "ERROR"] + self.session.exceptions()
        if errors or self.session.errors:
            self.problems.append(f"student {self.i} {when}: {errors or self.session.errors}")

    async def interact(self, rng: random.Random, j: int) -> None:
        await asyncio.sleep(self.think[j])
        # n and the seed only: a change of d or k moves r's slider maximum, and the protocol client then
        # sends r's default (1) as a new widget's value (seen with bench/stclient.py; not a proxy matter)
        key, value = rng.choice([("n", 2 + (self.state["n"] - 1) % 5), ("seed", self.state["seed"] + 100)])
        self.state[key] = value
        result = await self.session.set_widget(key, value)
        self.results.append(result)
        if result.status != OK or result.exceptions:
            self.problems.append(f"student {self.i}: {key}={value} ended {result.status} {result.exceptions}")
        self.check(f"after {key}={value}")

    def figure_numbers(self) -> dict[str, list]:
        from helpers import heatmap_z
        return {t: heatmap_z(f).tolist() for t, f in self.session.figures().items()}


async def class_load(students: list[Student], rng: random.Random, rounds: int) -> None:
    async def one(st: Student):
        r = random.Random(rng.random())
        for j in range(rounds):
            await st.interact(r, j)
    await asyncio.gather(*(one(s) for s in students))


# --- the replica set ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    folder = tmp_path_factory.mktemp("replicas")
    with Replicas(3, port=PORT, folder=folder) as r:
        yield r
    logs = "".join(r.log(i).read_text(errors="replace") for i in range(3))
    refused = [line for line in logs.splitlines() if "refused a widget message" in line]
    assert not refused, "lora_app.server.widget_guard refused the protocol client's messages:\n" + "\n".join(refused[:5])


def cookie_on(cluster: Replicas, replica: str, exclude=()) -> str:
    """A fresh cookie that nginx's hash sends to ``replica`` (found by asking nginx)."""
    for i in range(500):
        cookie = f"probe{i:03d}{random.Random(i).getrandbits(64):016x}"
        if cookie in exclude:
            continue
        _, headers, _ = http_get(f"{cluster.url}/_stcore/health", cookie)
        if served_by(headers) == replica:
            return cookie
    raise AssertionError(f"no cookie reached {replica}")


def test_loopback_config_is_compose_config():
    """replicas.py changes only the upstreams, listen line and paths of deploy/nginx.conf; compose names its replicas."""
    text = NGINX_CONF.read_text()
    conf = loopback_conf(["127.0.0.1:1", "127.0.0.1:2"], "127.0.0.1:3", Path("/x"))
    kept = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")
            and not re.match(r"\s*(server app\d|listen|pid|error_log|access_log|worker_processes|user)\b", line)]
    assert all(line in conf.splitlines() for line in kept)
    assert "hash $lora_affinity consistent;" in text
    import yaml  # PyYAML, a dev requirement: the compose file is read, never skipped

    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    apps = sorted(name for name in compose["services"] if name != "nginx")
    assert re.findall(r"server (app\d+):8501", text) == apps


def test_a_run_trained_on_one_replica_is_served_by_another(cluster):
    """The runs folder is shared: replica B shows A's finished run at once, with no Train button, and trains nothing."""
    a, b = cluster.addresses[0], cluster.addresses[1]
    cookie_a = cookie_on(cluster, a)
    cookie_b = cookie_on(cluster, b)
    link = "view=finetune&real_steps=25&real_seed=4242"
    acc = "Held-out accuracy on reverse"

    async def scenario():
        sa = await proxy_session_class(cookie_a).open(cluster.url, "/real", link)
        assert sa.handshake_replica == a
        assert acc not in sa.metrics() and sa.widget("real_train")  # nobody trained this yet
        await sa.click("real_train")
        deadline = time.time() + 90
        while acc not in sa.metrics():
            assert time.time() < deadline, "the run did not finish on replica A"
            await asyncio.sleep(0.5)
            await sa.rerun()
        trained = sa.metrics()
        await sa.close()
        files = {p.name: p.stat().st_mtime_ns for p in cluster.runs_dir.glob("*.safetensors")}
        assert len(files) == 2, f"A saved its LoRA run and its full fine-tuning baseline: {sorted(files)}"

        sb = await proxy_session_class(cookie_b).open(cluster.url, "/real", link)
        assert sb.handshake_replica == b
        assert sb.metrics() == trained, "B serves A's run from the shared folder, the same numbers"
        assert not any(w.key == "real_train" for w in sb.widgets.values()), "B offers no Train: the run is there"
        assert not sb.exceptions() and not sb.errors
        await sb.close()
        assert {p.name: p.stat().st_mtime_ns for p in cluster.runs_dir.glob("*.safetensors")} == files, \
            "B trained and wrote nothing"

    run_async(scenario())


def test_class_through_nginx_and_a_replica_lost(cluster):
    rng = random.Random(13)
    students = [Student(i, rng) for i in range(STUDENTS)]

    async def scenario():
        t0 = time.perf_counter()
        await asyncio.gather(*(s.load(cluster.url) for s in students))
        await class_load(students, rng, INTERACTIONS)
        load_s = time.perf_counter() - t0
        problems = [p for s in students for p in s.problems]
        assert not problems, "\n".join(problems[:10])
        spread = Counter(s.replica for s in students)
        assert len(spread) > 1, f"every student landed on one replica: {spread}"
        latencies = sorted(r.latency_s for s in students for r in s.results)
        print(f"\n{STUDENTS} students over {dict(spread)}: {len(latencies)} interactions in {load_s:.1f} s, "
              f"p50 {latencies[len(latencies) // 2] * 1e3:.0f} ms, max {latencies[-1] * 1e3:.0f} ms")

        # a replica crashes: only its students lose their websocket
        victim = spread.most_common(1)[0][0]
        lost = [s for s in students if s.replica == victim]
        kept = [s for s in students if s.replica != victim]
        assert kept, "some students are on the other replicas"
        before = {s.i: s.figure_numbers() for s in lost}
        cluster.kill(cluster.addresses.index(victim))
        deadline = time.time() + 10
        while not all(s.session.closed for s in lost):
            assert time.time() < deadline, "the dead replica's websockets did not close"
            await asyncio.sleep(0.1)
        assert not [s.i for s in kept if s.session.closed], "a student of a live replica lost their websocket"

        # the others carry on where they are, on the same socket
        await class_load(kept, rng, 1)
        # the lost students reload: same cookie, their own link; they land on a live replica and see the same numbers
        for s in lost:
            await s.session.close()
            s.session = None
        await asyncio.gather(*(s.load(cluster.url) for s in lost))
        for s in lost:
            assert s.replica != victim and s.replica in cluster.addresses
            assert s.figure_numbers() == before[s.i], f"student {s.i} did not carry on from their link"
        await class_load(lost, rng, 1)
        problems = [p for s in students for p in s.problems]
        assert not problems, "\n".join(problems[:10])
        assert not [s.i for s in kept if s.session.closed]
        # they stay on their new replica: a second reload goes where the first did
        for s in lost:
            _, headers, _ = await asyncio.to_thread(http_get, f"{cluster.url}/?{s.link}", s.cookie)
            assert served_by(headers) == s.replica
        await asyncio.gather(*(s.session.close() for s in students))

    run_async(scenario())
