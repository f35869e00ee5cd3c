"""Run K replicas of the app behind Debian's nginx on one machine, with the affinity of deploy/nginx.conf.

For a teacher without Docker, and for the tests (tests/test_replicas.py):

    python deploy/replicas.py --replicas 3 --port 8880                 # students open http://this-machine:8880
    python deploy/replicas.py --replicas 3 --port 8880 --runs-dir /srv/lora-runs

Each replica is ``streamlit run app.py`` on a loopback port (port+1, port+2, …); nginx listens on ``port``
and is configured from deploy/nginx.conf itself: only its upstream servers, its listen line and its paths
(pid, logs, temporary files, all in one folder of its own) are replaced, so the tests check the file that
compose uses. Nothing needs root. Every replica gets the same ``LORA_RUNS_DIR``, so a run trained on one is
served by all of them (lora_app.compute.jobs verifies each file it reads).

From Python::

    with Replicas(3, port=8850) as r:
        r.url                 # nginx, e.g. http://127.0.0.1:8850
        r.addresses           # ["127.0.0.1:8851", ...], as nginx's X-Replica header names them
        r.kill(0)             # a replica crashes (SIGKILL)
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
FAIL = "max_fails=1 fail_timeout=10s"


def find_nginx() -> str | None:
    """Debian's nginx, also where /usr/sbin is not on a user's PATH."""
    found = shutil.which("nginx")
    if found:
        return found
    return "/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None


def _replace_once(text: str, pattern: str, new: str) -> str:
    out, n = re.subn(pattern, lambda _: new, text, flags=re.M | re.S)
    if n != 1:
        raise ValueError(f"deploy/nginx.conf: expected one match of {pattern!r}, found {n}")
    return out


def loopback_conf(upstreams: list[str], listen: str, folder: Path, template: str | None = None) -> str:
    """deploy/nginx.conf for these upstreams, listening on ``listen``, with every path inside ``folder``."""
    text = NGINX_CONF.read_text() if template is None else template
    servers = "".join(f"        server {u} {FAIL};\n" for u in upstreams)
    text = _replace_once(text, r"(^[ \t]*# replicas >>>\n).*?(^[ \t]*# <<< replicas\n)",
                         "        # replicas >>>\n" + servers + "        # <<< replicas\n")
    text = _replace_once(text, r"^[ \t]*listen 80;", f"        listen {listen};")
    text = _replace_once(text, r"^error_log \S+", f"error_log {folder / 'error.log'}")
    text = _replace_once(text, r"^pid \S+;", f"pid {folder / 'nginx.pid'};")
    text = _replace_once(text, r"^[ \t]*access_log \S+", f"    access_log {folder / 'access.log'}")
    text = _replace_once(text, r"^worker_processes \S+;", "worker_processes 2;")
    text = _replace_once(text, r"^user \S+;[^\n]*\n", "")     # as root, nginx's workers run as nobody
    temp = "".join(f"    {kind}_temp_path {folder / kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return _replace_once(text, r"^http \{\n", "http {\n" + temp)


def _get(url: str, timeout: float = 2) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def _wait_health(url: str, proc: subprocess.Popen, deadline: float, what: str, log: Path) -> None:
    while True:
        try:
            if _get(f"{url}/_stcore/health") == b"ok":
                return
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{what} did not start (see {log}):\n{tail}")
        time.sleep(0.3)


class Replicas:
    """K streamlit replicas on 127.0.0.1:port+1 … port+K and nginx on ``listen``:``port`` in front of them."""

    def __init__(self, replicas: int = 3, port: int = 8880, *, listen: str = "127.0.0.1", runs_dir: Path | str | None = None,
                 env: dict | None = None, folder: Path | str | None = None, script: str = "app.py",
                 timeout_s: float = 120):
        if replicas < 1:
            raise ValueError("at least one replica")
        self.port, self.listen, self.script, self.timeout_s = port, listen, script, timeout_s
        self.ports = [port + 1 + i for i in range(replicas)]
        self.addresses = [f"127.0.0.1:{p}" for p in self.ports]
        self.replica_urls = [f"http://{a}" for a in self.addresses]
        self.url = f"http://127.0.0.1:{port}"
        self._own_folder = folder is None
        self.folder = Path(tempfile.mkdtemp(prefix="lora-replicas-") if folder is None else folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.runs_dir = Path(runs_dir) if runs_dir is not None else self.folder / "runs"
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "LORA_DEVICE": os.environ.get("LORA_DEVICE", "cpu"), **(env or {}),
                    "LORA_RUNS_DIR": str(self.runs_dir)}
        self.procs: list[subprocess.Popen | None] = [None] * replicas
        self.nginx: subprocess.Popen | None = None

    # --- replicas ------------------------------------------------------------------------------

    def log(self, i: int) -> Path:
        return self.folder / f"replica-{i}.log"

    def _spawn(self, i: int) -> subprocess.Popen:
        log = open(self.log(i), "a")
        try:
            return subprocess.Popen(
                [sys.executable, "-m", "streamlit", "run", self.script, "--server.headless", "true",
                 "--server.port", str(self.ports[i]), "--server.address", "127.0.0.1",
                 "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"],
                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        finally:
            log.close()

    def start_replica(self, i: int) -> None:
        """Start replica i (again, after a crash) and wait for its health check."""
        self.procs[i] = self._spawn(i)
        _wait_health(self.replica_urls[i], self.procs[i], time.time() + self.timeout_s, f"replica {i}", self.log(i))

    def kill(self, i: int) -> None:
        """Replica i crashes: SIGKILL, no goodbye to its sessions."""
        proc = self.procs[i]
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)

    def alive(self, i: int) -> bool:
        proc = self.procs[i]
        return proc is not None and proc.poll() is None

    # --- nginx ---------------------------------------------------------------------------------

    @property
    def conf_path(self) -> Path:
        return self.folder / "nginx.conf"

    def _nginx_cmd(self, *extra: str) -> list[str]:
        nginx = find_nginx()
        if nginx is None:
            raise RuntimeError("nginx is not installed (on Debian: apt-get install nginx)")
        return [nginx, "-p", str(self.folder), "-c", str(self.conf_path), "-e", str(self.folder / "error.log"),
                *extra]

    def start_nginx(self) -> None:
        self.conf_path.write_text(loopback_conf(self.addresses, f"{self.listen}:{self.port}", self.folder))
        test = subprocess.run(self._nginx_cmd("-t", "-q"), capture_output=True, text=True)
        if test.returncode != 0:
            raise RuntimeError(f"nginx -t refused {self.conf_path}:\n{test.stderr}")
        log = open(self.folder / "nginx.out", "w")
        try:
            self.nginx = subprocess.Popen(self._nginx_cmd("-g", "daemon off;"), stdout=log, stderr=subprocess.STDOUT)
        finally:
            log.close()
        _wait_health(self.url, self.nginx, time.time() + 30, "nginx", self.folder / "error.log")

    # --- all of it -----------------------------------------------------------------------------

    def start(self) -> Replicas:
        os.chmod(self.folder, 0o755)   # nginx's workers (nobody, when started as root) reach its temp paths
        try:
            for i in range(len(self.procs)):       # all start together, then each is waited for
                self.procs[i] = self._spawn(i)
            deadline = time.time() + self.timeout_s
            for i, proc in enumerate(self.procs):
                _wait_health(self.replica_urls[i], proc, deadline, f"replica {i}", self.log(i))
            self.start_nginx()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self.nginx is not None and self.nginx.poll() is None:
            self.nginx.send_signal(signal.SIGQUIT)      # graceful: the master stops its workers
            try:
                self.nginx.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.nginx.kill()
                self.nginx.wait()
        for proc in self.procs:
            if proc is not None and proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            if proc is not None:
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

    def cleanup(self) -> None:
        if self._own_folder:
            shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> Replicas:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--replicas", type=int, default=3)
    ap.add_argument("--port", type=int, default=8880, help="nginx's port; the replicas take the next ones")
    ap.add_argument("--listen", default="0.0.0.0", help="nginx's address (default: every interface, for a class)")
    ap.add_argument("--runs-dir", default=os.environ.get("LORA_RUNS_DIR") or None,
                    help="the runs folder every replica shares (default: $LORA_RUNS_DIR, else a temporary folder)")
    args = ap.parse_args()
    r = Replicas(args.replicas, args.port, listen=args.listen, runs_dir=args.runs_dir)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    print(f"starting {args.replicas} replicas on {', '.join(r.addresses)} and nginx on {args.listen}:{args.port} "
          f"(logs in {r.folder}, runs in {r.runs_dir})", flush=True)
    r.start()
    print(f"ready: {r.url}  (Ctrl-C stops)", flush=True)
    try:
        while not stop:
            time.sleep(2)
            if r.nginx.poll() is not None:
                sys.exit(f"nginx stopped; see {r.folder / 'error.log'}")
            for i in range(len(r.procs)):
                if not r.alive(i):             # a crashed replica is started again; nginx finds it on its own
                    print(f"replica {i} ({r.addresses[i]}) stopped; starting it again", flush=True)
                    r.start_replica(i)
    except KeyboardInterrupt:
        pass
    finally:
        r.stop()
        r.cleanup()


if __name__ == "__main__":
    main()
