"""Classroom load, larger: python bench/bench_load.py [--sessions 40] [--rounds 4] [--contexts 8]

The scenario of tests/test_load.py (each tab opens its own view, moves its own control back and
forth, and must show exactly its own numbers), against a fresh `streamlit run app.py` and a fresh
headless Chromium, with more sessions and rounds. Prints the latency percentiles and the server's
RSS; docs/bench_load.md holds the numbers of a run.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from conftest import CHROMIUM, CHROMIUM_ARGS
from test_load import IDLE, classroom, summary_lines

from helpers import start_streamlit


def start_server() -> tuple[subprocess.Popen, str]:
    return start_streamlit("app.py", ROOT / "tests" / ".streamlit-bench.log", timeout_s=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--contexts", type=int, default=8)
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    server, url = start_server()
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            warm = browser.new_page()  # leave Streamlit's pages/-folder mode, as the test does
            warm.goto(url)
            warm.wait_for_selector(IDLE)
            warm.close()
            m = classroom(browser, url, args.sessions, args.rounds, args.contexts, wait_s=900)
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=10)
    print("\n".join(summary_lines(m)))


if __name__ == "__main__":
    main()
