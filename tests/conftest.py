"""Shared fixtures: a real `streamlit run app.py` server and Debian's Chromium for the browser tests."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 # the tabs of one context share a renderer process: a new tab then finds the app's scripts
                 # compiled, and opens for about 2.4 s of CPU instead of 5 to 6 (measured; see the README)
                 "--process-per-site"]
# the class of 20 tabs (tests/test_load.py) is 20 students' browsers, each tab with a renderer of its own
STUDENT_ARGS = [arg for arg in CHROMIUM_ARGS if arg != "--process-per-site"]
POLL_MS = 50  # how often a page's wait_for_function asks: playwright's default, every frame, costs a renderer 10-14 % of a core


# pytest-xdist (pytest.ini: -n 3 --dist loadfile): a module's tests run on one worker, in their order, as they do
# without xdist (a module may build on what its earlier tests left: a cache, a trained run). The browser modules
# below are spread over the workers, test by test: each of their tests opens its own pages, and the longest of
# them (the two themes of the accessibility check, the narrow screens) would otherwise run one after the other.
# (xdist's own --dist loadgroup cannot say this: with pytest 9 the group it appends to a test's id is lost.)
SPREAD = {"test_browser_a11y", "test_browser_classroom", "test_browser_explore", "test_browser_hostile",
          "test_browser_keys", "test_browser_links", "test_browser_pages", "test_browser_present",
          "test_browser_training"}


@pytest.hookimpl(optionalhook=True)  # a hook of xdist's: none where it is not installed
def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadfile":
        return None  # another --dist, given on the command line: xdist's own
    from xdist.scheduler import LoadFileScheduling

    class FileOrTest(LoadFileScheduling):
        """--dist loadfile, but a test of a SPREAD module is a unit of its own, and the browser's units go first.

        xdist hands out the units with the most tests first; a browser test is one unit of one test, and
        among them are the run's longest (minutes each): last, they would leave one worker idle at the end.
        """

        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return nodeid if Path(module).stem in SPREAD else module

        def schedule(self) -> None:
            starting = self.collection is None
            super().schedule()
            if starting and self.workqueue:  # the first units are out; of the rest, the browser's go first
                def browser(unit):
                    return Path(unit[0].split("::", 1)[0]).stem.startswith("test_browser_")

                def position(unit):
                    return self.collection.index(next(iter(unit[1])))

                units = list(self.workqueue.items())
                self.workqueue.clear()
                self.workqueue.update(sorted(filter(browser, units), key=position)
                                      + [unit for unit in units if not browser(unit)])

    return FileOrTest(config, log)


def pytest_configure(config):
    """Under pytest-xdist, every process of the run gets its share of the cores as its thread count.

    Each worker, and the test server and Chromium each worker starts, is a process of its own. With torch's and
    OpenBLAS's default of one thread per core, three workers and three servers on 2 cores would each run 2
    threads, and OpenMP's and OpenBLAS's idle threads spin while they wait for each other: the default run took
    1,240 s of CPU (10 min 22 s), and 960 s (8 min 13 s) with one thread each, the next run on the same machine.
    Set in the controller's environment before the workers start, so that workers and servers inherit it; a
    value the person running the tests has set is kept. Runs without workers (``-n 0``: the timed suites) keep
    the defaults they measure.
    """
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "0")) or _xdist_workers(config)
    if workers > 1:
        threads = max(1, (os.cpu_count() or 1) // workers)
        for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(variable, str(threads))
        import torch

        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


def _xdist_workers(config) -> int:
    """The controller's worker count (-n), 0 without pytest-xdist or with -n 0."""
    n = getattr(config.option, "numprocesses", None)
    return n if isinstance(n, int) else 0


@pytest.fixture(scope="session")
def app_url():
    """Start the app as a user would, wait for its health check, and stop it afterwards."""
    from helpers import server_log_path, start_streamlit

    log = server_log_path()
    proc, url = start_streamlit(os.environ.get("LORA_TEST_ENTRY", "app.py"), log, timeout_s=60)
    yield url
    proc.terminate()
    proc.wait(timeout=10)
    text = log.read_text(errors="replace")
    # a real browser's messages must all pass lora_app.server.widget_guard: a refusal here means the guard is wrong
    refused = [line for line in text.splitlines() if "refused a widget message" in line]
    assert not refused, "the guard refused messages of a real browser:\n" + "\n".join(refused[:5])
    log.unlink(missing_ok=True)  # kept where a test failed on it


@pytest.fixture(scope="session")
def navigation_ready(shared_context):
    """The entry page has run once, so the server has left Streamlit's old pages/-folder mode (see
    navigation.entry_guard): the worker's context keeps it open (``shared_context``)."""


@pytest.fixture(scope="session")
def browser(browser):
    """pytest-playwright's browser, whose every page counts the server's runs from its websocket (helpers.track_runs).

    Wrapped here, not in each test: the counting must start before a page's first navigation.
    """
    from helpers import track_runs

    new_context, new_page = browser.new_context, browser.new_page

    def context_counting(*args, **kwargs):
        context = new_context(*args, **kwargs)
        context.on("page", track_runs)
        context.on("page", _poll_every_few_frames)
        context_new_page = context.new_page

        def page_counting(*a, **kw):
            page = context_new_page(*a, **kw)
            track_runs(page)  # does nothing if the "page" event came first
            _poll_every_few_frames(page)
            return page

        context.new_page = page_counting
        return context

    def page_counting(*args, **kwargs):
        page = new_page(*args, **kwargs)
        track_runs(page)
        _poll_every_few_frames(page)
        return page

    browser.new_context, browser.new_page = context_counting, page_counting
    yield browser
    browser.new_context, browser.new_page = new_context, new_page


def _poll_every_few_frames(page) -> None:
    """The page's ``wait_for_function`` asks every POLL_MS unless a test says otherwise (once per page)."""
    if getattr(page, "_polls_every_few_frames", False):
        return
    wait_for_function = page.wait_for_function

    def polling(expression, *args, polling=POLL_MS, **kwargs):
        return wait_for_function(expression, *args, polling=polling, **kwargs)

    page.wait_for_function, page._polls_every_few_frames = polling, True


@pytest.fixture(scope="session")
def shared_context(browser, browser_context_args, app_url):
    """The worker's one browser context, in which every test's ``page`` opens as a new tab.

    A fresh context per test (pytest-playwright's default) starts a fresh renderer process, which
    compiles the app's scripts again: 5 to 6 s of CPU before the first figure, against about 2.4 s
    for a tab of a context that has them (with --process-per-site). Each tab is a session of its own
    on the server; a test that needs a browser of its own (touch, nothing shared) opens its own context.

    The context keeps one tab of the app open, on the entry page, for as long as it lives: with no tab
    of the site left, Chromium ends the renderer, and the next test's tab would start a new one (12
    page loads took 73-82 s that way, 36-51 s with the tab kept; measured on this 2-core machine).
    """
    from helpers import wait_idle

    context = browser.new_context(**browser_context_args)
    keeper = context.new_page()
    keeper.goto(f"{app_url}/")  # the entry page: it also takes the server out of the pages/-folder mode
    wait_idle(keeper)
    context.keeper = keeper
    yield context
    context.close()


@pytest.fixture
def page(shared_context):
    """A new tab of the worker's context; the tabs the test left open are closed after it (the keeper stays)."""
    page = shared_context.new_page()
    yield page
    for tab in shared_context.pages:
        if tab is not shared_context.keeper:
            tab.close()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    # playwright cannot download its own browser here: use the system's Chromium
    if not Path(CHROMIUM).exists():
        raise RuntimeError(f"browser tests need Chromium at {CHROMIUM}: apt-get install chromium")
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    """A large screen, and the system's setting for less motion, as a person may set it.

    With ``prefers-reduced-motion: reduce`` Streamlit draws its running and loading indicators without
    their animations: six pages opened one after the other cost Chromium 25 s of CPU instead of 31.5 s
    (two runs each), and what is drawn once they settle is the same. The accessibility walk
    (test_browser_a11y) asks for the default motion again, so that every page is also seen as most people see it.
    """
    return {**browser_context_args, "viewport": {"width": 1600, "height": 1400}, "reduced_motion": "reduce"}


@pytest.fixture
def app_test(monkeypatch):
    """An AppTest of app.py on the CPU (see helpers.keep_navigation_mode for an AppTest quirk)."""
    from streamlit.testing.v1 import AppTest

    from helpers import keep_navigation_mode

    keep_navigation_mode(monkeypatch)
    monkeypatch.setenv("LORA_DEVICE", "cpu")
    return AppTest.from_file(str(ROOT / os.environ.get("LORA_TEST_ENTRY", "app.py")), default_timeout=60)


@pytest.fixture(scope="session", autouse=True)
def _runs_folder(tmp_path_factory):
    """Finished Real-model runs go to a temporary folder, never to a user's LORA_RUNS_DIR.

    Set in the environment for the whole session, so AppTests and the test servers (which inherit it) agree.
    """
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LORA_RUNS_DIR", str(tmp_path_factory.mktemp("runs")))
        yield


@pytest.fixture
def cold_store(monkeypatch, tmp_path):
    """An empty run store with its own empty runs folder: nothing any other test trained is served.

    Yields the folder. The store is emptied again afterwards, so no run of this test reaches another.
    """
    from lora_app.compute import jobs

    folder = tmp_path / "runs"
    monkeypatch.setenv("LORA_RUNS_DIR", str(folder))
    jobs.STORE.clear()
    yield folder
    jobs.STORE.clear()
