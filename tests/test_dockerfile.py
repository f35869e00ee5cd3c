"""The image and the replica set, checked without a Docker engine (this machine has only Docker's client).

What can be checked here is checked for real: the files ``.dockerignore`` lets into the build context
are copied to a folder of their own, and the image's own CMD and HEALTHCHECK, run from that folder
outside a container, start the app, report it healthy, and serve a session its numbers. The Dockerfile's
instructions and deploy/compose.yaml are read and held to what the issue asks (a slim base, the pinned
requirements without dev dependencies, a non-root user, the health check; replicas behind nginx that
all mount the runs folder). What only an engine can show (the build itself, the CPU torch wheel's
download) is not shown here.
"""
from __future__ import annotations

import fnmatch
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

from helpers import run_async

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile as (INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    out, pending = [], ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        word, _, rest = pending.strip().partition(" ")
        out.append((word.upper(), rest.strip()))
        pending = ""
    return out


def exec_form(args: str) -> list[str]:
    import json
    return json.loads(args)


def build_context() -> list[str]:
    """The repository's files that .dockerignore lets into the build context (Docker's rule: the last
    pattern matching the path or one of its parent folders decides; ``!`` lets it in)."""
    rules = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            rules.append((line.startswith("!"), line.lstrip("!").rstrip("/")))

    def excluded(rel: str) -> bool:
        parts = rel.split("/")
        verdict = False
        for include, pattern in rules:
            for i in range(1, len(parts) + 1):
                prefix = "/".join(parts[:i])
                if fnmatch.fnmatchcase(prefix, pattern) or (pattern.startswith("**/")
                                                             and fnmatch.fnmatchcase(parts[i - 1], pattern[3:])):
                    verdict = not include
                    break
        return verdict

    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    return sorted(f for f in tracked if not excluded(f))


def test_the_image_is_slim_pinned_non_root_and_checks_its_health():
    ins = instructions()
    words = [w for w, _ in ins]
    base = dict(ins)["FROM"]
    assert re.fullmatch(r"python:3\.\d+-slim", base), f"a slim Python base, not {base!r}"
    runs = " && ".join(a for w, a in ins if w == "RUN")
    assert "pip install -r requirements.txt" in runs
    assert "requirements-dev" not in (ROOT / "Dockerfile").read_text(), "no dev dependencies in the image"
    torch = re.search(r'"torch==\$\(sed -n \'s/\^torch==//p\' requirements\.txt\)"', runs)
    assert torch, "torch's version comes from requirements.txt, not a second pin"
    assert "torch==2.13.0" in (ROOT / "requirements.txt").read_text().split()
    users = [a for w, a in ins if w == "USER"]
    assert users and users[-1] not in ("root", "0"), "the app runs as a user of its own"
    assert words.index("USER") > max(i for i, w in enumerate(words) if w in ("RUN", "COPY")), \
        "USER comes after every RUN and COPY: nothing later runs as root"
    assert re.search(rf"useradd .*{users[-1]}", runs)
    port = dict(ins)["EXPOSE"]
    health = dict(ins)["HEALTHCHECK"]
    assert f"http://localhost:{port}/_stcore/health" in health
    cmd = exec_form(dict(ins)["CMD"])
    assert cmd[:3] == ["streamlit", "run", "app.py"]
    flags = dict(zip(cmd[3::2], cmd[4::2]))
    assert flags["--server.port"] == port and flags["--server.headless"] == "true"
    assert flags["--browser.gatherUsageStats"] == "false" and flags["--server.address"] == "0.0.0.0"


def test_the_build_context_is_the_app_and_nothing_else():
    files = build_context()
    assert {"app.py", "requirements.txt", ".streamlit/config.toml", "lora_core/assets/tiny_sort.safetensors",
            "lora_core/assets/tiny_sort.json"} <= set(files)
    pages = {p.name for p in (ROOT / "pages").glob("*.py")}
    assert {f.split("/")[-1] for f in files if f.startswith("pages/")} == pages, "every page is in the image"
    assert not [f for f in files if f.split("/")[0] in ("tests", "bench", "docs", ".ci", "deploy", ".venv", ".git")]
    assert "requirements-dev.txt" not in files and "Dockerfile" not in files


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory):
    """What ``COPY . .`` puts in /app: the build context, copied file by file."""
    folder = tmp_path_factory.mktemp("image") / "app"
    for rel in build_context():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, folder / rel)
    return folder


def test_the_images_cmd_and_healthcheck_serve_the_app_from_its_files_alone(image_folder, tmp_path):
    """The CMD, on a free port, from the image's files only (the tests and the repository are not there)."""
    from stclient import Session

    ins = dict(instructions())
    port = ins["EXPOSE"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        free = str(s.getsockname()[1])
    cmd = [a.replace(port, free) if a == port else a for a in exec_form(ins["CMD"])]
    cmd = [a if a != "0.0.0.0" else "127.0.0.1" for a in cmd]
    env = {**os.environ, "LORA_DEVICE": "cpu", "LORA_RUNS_DIR": str(tmp_path / "runs"),
           "PYTHONPATH": "", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    log = open(tmp_path / "server.log", "w")
    proc = subprocess.Popen(cmd, cwd=image_folder, env=env, stdout=log, stderr=subprocess.STDOUT)
    health = exec_form(ins["HEALTHCHECK"].split("CMD", 1)[1].strip())  # the Dockerfile's exec form
    health = [a.replace(f"localhost:{port}", f"localhost:{free}") for a in health]
    health[0] = sys.executable if health[0] == "python" else health[0]
    try:
        deadline = time.time() + 90
        while subprocess.run(health, capture_output=True).returncode != 0:
            assert proc.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
            assert time.time() < deadline, "the health check never passed"
            time.sleep(0.5)
        assert urllib.request.urlopen(f"http://127.0.0.1:{free}/_stcore/health", timeout=5).read() == b"ok"

        async def student():
            s = await Session.open(f"http://127.0.0.1:{free}", "/", "seed=7&r=1&view=q", timeout=90)
            try:
                assert not [e for r in s.first_load for e in r.exceptions]
                return set(s.figures())
            finally:
                await s.close()
        titles = run_async(student())
        assert "Q = X·(W_Q + ΔW_Q) (3×3)" in titles
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        log.close()
    proc2 = subprocess.run(health, capture_output=True)
    assert proc2.returncode != 0, "the health check fails once the server is gone (it can fail)"


def test_compose_runs_replicas_behind_nginx_with_affinity_and_one_runs_volume():
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    services = compose["services"]
    apps = sorted(name for name in services if name != "nginx")
    assert len(apps) >= 2
    for name in apps:
        svc = services[name]
        assert svc["build"]["dockerfile"] == "Dockerfile" and svc["build"]["context"] == ".."
        mounts = {v.split(":")[1]: v.split(":")[0] for v in svc["volumes"]}
        assert mounts.get(svc["environment"]["LORA_RUNS_DIR"]) == "runs", f"{name} mounts the shared runs volume"
        assert "8501" in [str(p) for p in svc["expose"]]
    nginx = services["nginx"]
    assert {n: d["condition"] for n, d in nginx["depends_on"].items()} == {n: "service_healthy" for n in apps}
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    upstream = re.findall(r"^\s*server (\S+):8501 ", conf, re.M)
    assert sorted(upstream) == apps, "nginx's upstream is exactly the compose file's replicas"
    assert "hash $lora_affinity consistent;" in conf
    assert any(v.endswith("/etc/nginx/nginx.conf:ro") and v.startswith("./nginx.conf") for v in nginx["volumes"])
