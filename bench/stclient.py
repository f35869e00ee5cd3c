"""One Streamlit session over the app's own websocket protocol, as Streamlit's frontend speaks it.

No browser: the session is a websocket to ``/_stcore/stream`` (subprotocol ``streamlit``) that sends
``BackMsg.rerun_script`` and reads ``ForwardMsg`` protobufs until the run's ``script_finished``.
It does what the frontend of Streamlit 1.67 does (``App.sendRerunBackMsg`` in its bundle):

- the first rerun carries the URL's query string, an empty ``page_script_hash`` and the page's
  URL path as ``page_name``; later reruns carry the current page's hash (from the ``navigation``
  message) and the query string the server last wrote (``page_info_changed``);
- every rerun carries the state of every widget of the last finished run: the value the server
  set (``set_value``), else the one the client set, else the widget's default; a button's trigger is
  sent once;
- messages the client holds are named in ``cached_message_hashes`` and come back as ``ref_hash``
  references, resolved from the client's own cache (entries unused for two runs are dropped).

The starlette server of 1.67 needs no cookie or XSRF token for this (XSRF only guards the auth
cookie) and accepts a websocket without an ``Origin`` header.

    session = await Session.open("http://127.0.0.1:8501", "/", "n=3&d=5")
    run = await session.set_widget("n", 4)         # a RunResult: latency, messages, bytes
    session.figures()["Q = X·W_Q (4×3)"]           # plotly figure dicts by title
    await session.close()

Every session is a few asyncio tasks on the caller's event loop: hundreds run in one process.
"""
from __future__ import annotations

import asyncio
import json
import random
import re
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import websockets
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState

FINISHED = ForwardMsg.ScriptFinishedStatus
_DONE = {FINISHED.FINISHED_SUCCESSFULLY, FINISHED.FINISHED_WITH_COMPILE_ERROR}
_CACHE_RUNS = 2          # a cached message unused for this many runs is dropped (as the frontend does)
SCREEN = {"vw": 1600, "vh": 1400, "main": 1296}  # the window the screen reporter says it has


class SessionError(RuntimeError):
    """The session could not do what was asked: a closed socket, a timeout, an unknown widget."""


@dataclass
class RunResult:
    """One rerun, from the send of its BackMsg to the ``script_finished`` that ends it."""
    latency_s: float
    messages: int
    bytes: int
    status: str                          # FINISHED_SUCCESSFULLY, ... (the terminal script_finished)
    exceptions: list[str] = field(default_factory=list)   # "Type: message" of each exception element
    page_not_found: str | None = None
    reruns: int = 0                      # runs that ended early for a rerun inside this interaction


@dataclass
class Widget:
    """A widget of the last finished run: its id, its user key, what kind it is, and its element proto."""
    id: str
    key: str | None
    kind: str      # slider, select_slider, number_input, selectbox, radio, checkbox, toggle, button_group,
    #                button, tabs, expander, component, plotly_chart, data_editor, text_input, ...
    label: str
    proto: Any

    def initial(self) -> WidgetState | None:
        """The state the frontend sends for this widget before the user touches it (None: it sends none)."""
        p, k = self.proto, self.kind
        st = WidgetState(id=self.id)
        set_value = getattr(p, "set_value", False)
        if k == "slider":
            st.double_array_value.data[:] = list(p.value if set_value else p.default)
        elif k == "select_slider":
            st.string_array_value.data[:] = list(p.raw_value) if set_value else [p.options[int(i)] for i in p.default]
        elif k == "number_input":
            v = p.value if set_value else p.default
            if p.data_type == p.INT:
                st.int_value = int(v)
            else:
                st.double_value = v
        elif k in ("selectbox", "radio"):
            if set_value:
                if not p.HasField("raw_value"):
                    return None
                st.string_value = p.raw_value
            elif 0 <= p.default < len(p.options):
                st.string_value = p.options[p.default]
            else:
                return None
        elif k in ("checkbox", "toggle"):
            st.bool_value = p.value if set_value else p.default
        elif k == "button_group":
            st.string_array_value.data[:] = list(p.raw_values) if set_value else [p.options[i].content for i in p.default]
        elif k == "tabs":
            labels = self.tab_labels()
            st.string_value = p.default_tab_label or (labels[p.default_tab_index] if p.default_tab_index < len(labels) else "")
        elif k == "expander":
            st.bool_value = p.expanded
        else:
            return None  # buttons, charts' selections, components, editors: nothing until the user acts
        return st

    def tab_labels(self) -> list[str]:
        return list(getattr(self, "_tabs", []))

    def encode(self, value) -> WidgetState:
        """The WidgetState that sets this widget to ``value`` (a Python value, or an option as shown)."""
        p, k = self.proto, self.kind
        st = WidgetState(id=self.id)
        if k == "slider":
            vals = list(value) if isinstance(value, (list, tuple)) else [value]
            st.double_array_value.data[:] = [float(v) for v in vals]
        elif k == "select_slider":
            vals = list(value) if isinstance(value, (list, tuple)) else [value]
            st.string_array_value.data[:] = [_option(p.options, v, self) for v in vals]
        elif k == "number_input":
            if p.data_type == p.INT:
                st.int_value = int(value)
            else:
                st.double_value = float(value)
        elif k in ("selectbox", "radio"):
            st.string_value = _option(p.options, value, self)
        elif k in ("checkbox", "toggle", "expander"):
            st.bool_value = bool(value)
        elif k == "button_group":
            vals = list(value) if isinstance(value, (list, tuple)) else [value]
            st.string_array_value.data[:] = [_option([o.content for o in p.options], v, self) for v in vals]
        elif k == "tabs":
            st.string_value = _option(self.tab_labels(), value, self)
        elif k in ("button", "download_button"):
            st.trigger_value = True
        elif k == "component":
            st.json_value = json.dumps(value)
        elif k in ("plotly_chart", "data_editor", "text_input", "text_area"):
            st.string_value = value if isinstance(value, str) else json.dumps(value)
        else:
            raise SessionError(f"cannot set a {k} widget ({self.key or self.id})")
        return st


def _option(options, value, widget: Widget) -> str:
    """The option string a widget sends for ``value``: the option itself, its str(), or its :g form."""
    options = list(options)
    for cand in (value, str(value), f"{value:g}" if isinstance(value, float) else None):
        if cand in options:
            return cand
    if isinstance(value, int) and not isinstance(value, bool) and str(value) not in options and 0 <= value < len(options):
        return options[value]  # an index
    raise SessionError(f"{value!r} is not an option of {widget.key or widget.label}: {options[:12]}")


_WIDGET_KINDS = {"slider", "number_input", "selectbox", "radio", "checkbox", "button_group", "button",
                 "download_button", "plotly_chart", "bidi_component", "text_input", "text_area", "multiselect",
                 "arrow_data_frame", "file_uploader", "date_input", "color_picker", "menu_button"}


def _widget_of(element) -> Widget | None:
    kind = element.WhichOneof("type")
    if kind not in _WIDGET_KINDS and kind != "dataframe":
        return None
    p = getattr(element, kind)
    wid = getattr(p, "id", "")
    if not wid:
        return None  # a chart without selections, a dataframe that is not an editor
    if kind == "slider":
        kind = "select_slider" if p.type == p.SELECT_SLIDER else "slider"
    elif kind == "checkbox":
        kind = "toggle" if p.type == p.TOGGLE else "checkbox"
    elif kind == "bidi_component":
        kind = "component"
    elif kind == "dataframe":
        kind = "data_editor"
    return Widget(wid, widget_key(wid), kind, getattr(p, "label", ""), p)


def widget_key(widget_id: str) -> str | None:
    """The user key inside an id ``$$ID-<hash>-<key>`` (None for an unkeyed widget)."""
    parts = widget_id.split("-", 2)
    return parts[2] if len(parts) == 3 and parts[2] and parts[2] != "None" else None


def figure_title(spec: dict) -> str:
    """A figure's title as "A_Q (5×2)" (first line, with the shape a narrow figure moves to its subtitle)."""
    title = (spec.get("layout") or {}).get("title") or {}
    text = title.get("text") if isinstance(title, dict) else str(title)
    name = (text or "").split("<br>")[0]
    sub = ((title.get("subtitle") or {}).get("text") or "") if isinstance(title, dict) else ""
    shape = re.match(r"\(\d+×\d+\)", sub)
    return f"{name} {shape.group(0)}" if shape else name


class Session:
    """One browser tab's session, spoken over the protocol. Create with ``await Session.open(...)``."""

    def __init__(self, base_url: str, page_path: str, query: str, *, timeout: float = 60.0,
                 max_size: int | None = 2 ** 27):
        self.base_url = base_url.rstrip("/")
        self.page_name = page_path.strip("/")
        self.query_string = query.lstrip("?")
        self.timeout = timeout
        self._max_size = max_size
        self.ws = None
        self.session_id: str | None = None
        self.page_script_hash = ""
        self.pages: dict[str, str] = {}           # url_pathname -> page_script_hash
        self.tree: dict[tuple, Any] = {}          # the last finished run: delta path -> Element or Block
        self._current: dict[tuple, Any] = {}      # the run being received
        self._states: dict[str, WidgetState] = {}  # id -> the value this client holds for each widget
        self.widgets: dict[str, Widget] = {}      # id -> widget of the last finished run
        self._cache: dict[str, list] = {}         # hash -> [ForwardMsg, run index last used]
        self._runs = 0
        self.running = False
        self.closed: str | None = None            # why the socket closed, once it has
        self.errors: list[str] = []               # protocol problems: unknown ref_hash, bad frames
        self._waiter: asyncio.Future | None = None
        self._counting = [0, 0, 0, [], None]      # messages, bytes, early finishes, exceptions, page_not_found
        self._reader: asyncio.Task | None = None
        self.total_messages = 0
        self.total_bytes = 0

    # --- opening and closing ------------------------------------------------------------------

    @classmethod
    async def open(cls, base_url: str, page_path: str = "/", query: str = "", *, screen: dict | None = SCREEN,
                   timeout: float = 60.0) -> Session:
        """Connect, run the page once as a first visit does, and (by default) report a window size.

        ``screen`` emulates the app's screen reporter (``lora_app/widgets/screen.py``): after the first run the
        browser sends its window size and its key counter, which costs one more rerun, as in a browser.
        ``None`` skips it. The time of both runs is in ``session.first_load``.
        """
        self = cls(base_url, page_path, query, timeout=timeout)
        t0 = time.perf_counter()
        await self.connect()
        first = await self.rerun(first=True)
        self.first_load = [first]
        if screen is not None:
            comp = next((w for w in self.widgets.values() if w.kind == "component" and w.key == "screen"), None)
            if comp is not None:
                state = {"size": dict(screen), "keys": {"id": f"{random.getrandbits(40):010x}", "n": 0, "log": ""}}
                self.first_load.append(await self.set_widget(comp.id, state))
        self.first_load_s = time.perf_counter() - t0
        return self

    async def connect(self) -> None:
        u = urllib.parse.urlsplit(self.base_url)
        scheme = "wss" if u.scheme == "https" else "ws"
        url = f"{scheme}://{u.netloc}{u.path.rstrip('/')}/_stcore/stream"
        try:
            self.ws = await asyncio.wait_for(
                websockets.connect(url, subprotocols=["streamlit"], max_size=self._max_size, compression=None,
                                   open_timeout=self.timeout, ping_interval=None, close_timeout=2),
                self.timeout)
        except (TimeoutError, OSError, websockets.InvalidHandshake) as exc:
            raise SessionError(f"cannot connect to {url}: {type(exc).__name__}: {exc}") from exc
        self._reader = asyncio.create_task(self._read(), name="stclient-read")

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self._reader is not None:
            try:
                await asyncio.wait_for(self._reader, 5)
            except (TimeoutError, asyncio.CancelledError):
                self._reader.cancel()

    # --- sending ---------------------------------------------------------------------------------

    def widget(self, key_or_id: str) -> Widget:
        """A widget of the last run by its key, its id, or its label."""
        for match in (lambda w: w.id == key_or_id, lambda w: w.key == key_or_id, lambda w: w.label == key_or_id):
            found = [w for w in self.widgets.values() if match(w)]
            if found:
                return found[0]
        raise SessionError(f"no widget {key_or_id!r} on this page (keys: {sorted(filter(None, (w.key for w in self.widgets.values())))})")

    def value(self, key_or_id: str):
        """The widget's value as this client would send it (the wire form: a list for sliders, a label, ...)."""
        st = self._states.get(self.widget(key_or_id).id)
        if st is None:
            return None
        kind = st.WhichOneof("value")
        v = getattr(st, kind)
        return list(v.data) if hasattr(v, "data") else v

    async def set_widget(self, key_or_id: str, value) -> RunResult:
        """Set one widget (keeping all the others' states) and rerun; returns when the run has finished."""
        w = self.widget(key_or_id)
        return await self.rerun({w.id: w.encode(value)})

    async def click(self, key_or_id: str) -> RunResult:
        """Press a button (its trigger is sent once)."""
        return await self.set_widget(key_or_id, True)

    async def rerun(self, changes: dict[str, WidgetState] | None = None, *, first: bool = False) -> RunResult:
        if self.closed is not None:
            raise SessionError(f"the session's socket is closed ({self.closed})")
        if self._waiter is not None and not self._waiter.done():
            raise SessionError("a run of this session is still in flight")
        msg = BackMsg()
        rs = msg.rerun_script
        rs.query_string = self.query_string
        if first:
            rs.page_script_hash, rs.page_name = "", self.page_name
        else:
            rs.page_script_hash, rs.page_name = self.page_script_hash, ""
        states = {} if first else {wid: st for wid, st in self._states.items() if wid in self.widgets}
        for wid, st in (changes or {}).items():
            if st.WhichOneof("value") != "trigger_value":
                self._states[wid] = st  # a trigger is sent once; a value is what the widget now holds
            states[wid] = st
        rs.widget_states.widgets.extend(states.values())
        rs.cached_message_hashes.extend(self._cache)
        ci = rs.context_info
        ci.timezone, ci.timezone_offset, ci.locale = "UTC", 0, "en-US"
        ci.url = f"{self.base_url}/{self.page_name}" + (f"?{self.query_string}" if self.query_string else "")
        ci.color_scheme = "light"
        self._counting = [0, 0, 0, [], None]
        self._waiter = asyncio.get_running_loop().create_future()
        t0 = time.perf_counter()
        try:
            await self.ws.send(msg.SerializeToString())
            status = await asyncio.wait_for(asyncio.shield(self._waiter), self.timeout)
        except TimeoutError as exc:
            raise SessionError(f"no script_finished within {self.timeout} s") from exc
        except websockets.ConnectionClosed as exc:
            raise SessionError(f"the socket closed: {exc}") from exc
        latency = time.perf_counter() - t0
        n, b, early, exc_list, not_found = self._counting
        return RunResult(latency, n, b, FINISHED.Name(status) if isinstance(status, int) else str(status),
                         list(exc_list), not_found, early)

    # --- receiving -------------------------------------------------------------------------------

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                if isinstance(frame, str):
                    self.errors.append("a text frame")
                    continue
                self._counting[0] += 1
                self._counting[1] += len(frame)
                self.total_messages += 1
                self.total_bytes += len(frame)
                msg = ForwardMsg()
                msg.ParseFromString(frame)
                self._handle(msg)
        except websockets.ConnectionClosed as exc:
            self.closed = f"code {exc.rcvd.code if exc.rcvd else 'none'}"
        except Exception as exc:  # noqa: BLE001 - a reader must never die silently
            self.closed = f"reader failed: {type(exc).__name__}: {exc}"
            self.errors.append(self.closed)
        else:
            self.closed = "closed"
        finally:
            if self.closed is None:
                self.closed = "closed"
            if self._waiter is not None and not self._waiter.done():
                self._waiter.set_exception(SessionError(f"the socket closed mid-run ({self.closed})"))

    def _handle(self, msg: ForwardMsg) -> None:
        if msg.WhichOneof("type") == "ref_hash":
            cached = self._cache.get(msg.ref_hash)
            if cached is None:
                self.errors.append(f"unknown ref_hash {msg.ref_hash}")
                return
            cached[1] = self._runs
            full = ForwardMsg()
            full.CopyFrom(cached[0])
            full.metadata.CopyFrom(msg.metadata)
            msg = full
        elif msg.metadata.cacheable and msg.hash:
            self._cache[msg.hash] = [msg, self._runs]
        kind = msg.WhichOneof("type")
        if kind == "new_session":
            ns = msg.new_session
            self.session_id = ns.initialize.session_id or self.session_id
            if ns.page_script_hash:
                self.page_script_hash = ns.page_script_hash
            self._current = {}
            self.running = True
        elif kind == "navigation":
            nav = msg.navigation
            self.pages = {p.url_pathname: p.page_script_hash for p in nav.app_pages}
            if nav.page_script_hash:
                self.page_script_hash = nav.page_script_hash
        elif kind == "delta":
            path = tuple(msg.metadata.delta_path)
            d = msg.delta
            which = d.WhichOneof("type")
            if which == "new_element":
                self._current[path] = d.new_element
                if d.new_element.WhichOneof("type") == "exception":
                    e = d.new_element.exception
                    self._counting[3].append(f"{e.type}: {e.message[:300]}")
            elif which == "add_block":
                self._current[path] = d.add_block
        elif kind == "page_info_changed":
            self.query_string = msg.page_info_changed.query_string
        elif kind == "page_not_found":
            self._counting[4] = msg.page_not_found.page_name or "(main page)"
        elif kind == "session_status_changed":
            self.running = msg.session_status_changed.script_is_running
        elif kind == "script_finished":
            status = msg.script_finished
            if status in _DONE or status == FINISHED.FINISHED_FRAGMENT_RUN_SUCCESSFULLY:
                self._finish_run()
                if self._waiter is not None and not self._waiter.done():
                    self._waiter.set_result(status)
            else:
                self._counting[2] += 1

    def _finish_run(self) -> None:
        self.running = False
        self._runs += 1
        self.tree = self._current
        self.widgets = {}
        tabs_of: dict[tuple, Widget] = {}
        for path, item in sorted(self.tree.items()):
            if hasattr(item, "WhichOneof") and item.DESCRIPTOR.name == "Block":
                bk = item.WhichOneof("type")
                if bk == "tab_container" and item.tab_container.id:
                    w = Widget(item.tab_container.id, widget_key(item.tab_container.id), "tabs", "", item.tab_container)
                    w._tabs = []
                    tabs_of[path] = w
                elif bk == "tab" and path[:-1] in tabs_of:
                    tabs_of[path[:-1]]._tabs.append(item.tab.label)
                    continue
                elif bk == "expandable" and item.expandable.id:
                    w = Widget(item.expandable.id, widget_key(item.expandable.id), "expander", item.expandable.label,
                               item.expandable)
                else:
                    continue
            else:
                w = _widget_of(item)
                if w is None:
                    continue
            self.widgets[w.id] = w
        for w in self.widgets.values():
            if getattr(w.proto, "set_value", False) or w.id not in self._states or w.kind == "expander":
                st = w.initial()
                if st is not None:
                    self._states[w.id] = st
        self._cache = {h: v for h, v in self._cache.items() if v[1] >= self._runs - _CACHE_RUNS}

    # --- what came back --------------------------------------------------------------------------

    def elements(self) -> list:
        """The elements (not blocks) of the last finished run, in page order."""
        return [e for _, e in sorted(self.tree.items()) if e.DESCRIPTOR.name == "Element"]

    def texts(self) -> list[str]:
        """Every text of the last run: markdown, captions, LaTeX, headings, alerts, metrics ("label: value")."""
        out = []
        for e in self.elements():
            k = e.WhichOneof("type")
            if k in ("markdown", "heading", "alert", "text", "code"):
                out.append(getattr(e, k).body if k != "code" else e.code.code_text)
            elif k == "metric":
                out.append(f"{e.metric.label}: {e.metric.body}")
        return out

    def metrics(self) -> dict[str, str]:
        return {e.metric.label: e.metric.body for e in self.elements() if e.WhichOneof("type") == "metric"}

    def alerts(self) -> list[tuple[str, str]]:
        """(format, body) of each st.warning / st.error / st.info of the last run."""
        from streamlit.proto.Alert_pb2 import Alert
        return [(Alert.Format.Name(e.alert.format), e.alert.body) for e in self.elements() if e.WhichOneof("type") == "alert"]

    def exceptions(self) -> list[str]:
        return [f"{e.exception.type}: {e.exception.message}" for e in self.elements() if e.WhichOneof("type") == "exception"]

    def figures(self) -> dict[str, dict]:
        """The plotly figures of the last run as {title: figure dict}, first occurrence kept."""
        out: dict[str, dict] = {}
        for e in self.elements():
            if e.WhichOneof("type") == "plotly_chart" and e.plotly_chart.spec:
                spec = json.loads(e.plotly_chart.spec)
                out.setdefault(figure_title(spec), spec)
        return out
