"""The browser's screen, reported to the server, and the keys that must never get stuck.

One hidden component (Streamlit's own ``components.v2``, inline JavaScript, nothing fetched)
reports the window's size and the main area's width whenever they change, so figures and
slides are laid out for the screen they are shown on. The keyboard is kept honest by a script
that is live from the moment the page is drawn (:func:`listen`): Escape hands the keys back from
any widget, on Present a clicker's keys move the slide even after the mouse left a slider or a
select focused, and every press of the stepper's and the slides' keys reaches the server once,
in order (:func:`take_keys`). Size reports and key logs go one at a time, each once the run
before it is over, so none carries a widget's value from before a step the server has made.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import streamlit as st
import streamlit.components.v2 as components

PAD_REM = 1.5          # the main area's padding left and right (style.py sets it, layouts subtract it)
DEFAULT = {"vw": 1280, "vh": 800, "main": 1280}  # until the browser has reported (and in AppTest)

# The keyboard, counted from the moment the page is drawn. listen() runs this as a plain script among the
# page's first elements; the reporter below also runs it, for a page that does not call listen(). The
# reporter cannot be the first: its own code arrives in a chunk the browser fetches when it first mounts
# one, 1-2.5 s after a busy server drew the page, and presses made meanwhile reached Streamlit's own button
# shortcuts, whose reruns the first size report (sent with the widgets' old values) then undid.
_KEYS_JS = """
function loraKeys(lora) {
  if (lora.keys) return;  // once per window: the count goes on across the app's pages

  // which way focus arrived: a widget focused by a click or tap keeps no keys; one reached by Tab does
  let modality = 'keyboard', pointerDown = false;
  document.addEventListener('pointerdown', () => { modality = 'pointer'; pointerDown = true; }, true);
  document.addEventListener('pointerup', () => { pointerDown = false; }, true);
  document.addEventListener('pointercancel', () => { pointerDown = false; }, true);
  document.addEventListener('keydown', (e) => { if (e.key === 'Tab') modality = 'keyboard'; }, true);
  document.addEventListener('focusin', (e) => { e.target.dataset.loraFocus = modality; }, true);

  const WIDGETS = '[data-testid="stSlider"], [data-testid="stSelectbox"], [data-testid="stSelectSlider"], ' +
                  '[data-testid="stButtonGroup"], [data-testid="stNumberInput"], [data-testid="stRadio"]';
  // a field that takes typing (Streamlit's own rule for its shortcuts: an input, a text area, a select
  // or an editable element anywhere on the event's path)
  const typing = (e) => (e.composedPath ? e.composedPath() : [e.target]).some((n) => n && n.tagName &&
    (['INPUT', 'TEXTAREA', 'SELECT'].includes(n.tagName) || n.isContentEditable || n.getAttribute('contenteditable') === 'true'));

  // the keys that move the stepper and the slides are counted here, never dropped. Streamlit merges the
  // shortcut triggers that arrive while the script runs (two presses, one move); instead each press is
  // written to a log, and the log is sent once the run before it is over: the server applies every press
  // it has not applied yet, in order (screen.take_keys), and says how many it has applied (the data it
  // mounts the reporter with). Sending only then also means that the widgets' values the browser sends
  // along are those of the last run, never a step the server has already moved past.
  // one letter per action; take_keys knows the same letters
  const PAGES = {
    training: {box: '.st-key-stepper', keys: {ArrowRight: 'n', ArrowLeft: 'b', n: 's', p: 'p', Home: 'h'}},
    present: {box: '.st-key-slide_nav', keys: {ArrowRight: 'f', PageDown: 'f', ArrowLeft: 'r', PageUp: 'r'}},
  };
  const LOG_MAX = 64;
  const keys = lora.keys = {id: Math.random().toString(36).slice(2, 12), n: 0, log: '', sent: 0, announced: false};
  const app = () => document.querySelector('[data-testid="stApp"]');
  const idle = () => { const a = app(); return !a || a.dataset.testScriptState === 'notRunning'; };
  const playing = () => { const b = document.querySelector('.st-key-play button'); return !!b && /Pause/.test(b.innerText); };
  // a page that follows a training job (widgets/follow_run.py) shows its Stop button, keyed "..._stop"
  const following = () => [...document.querySelectorAll('[class*="st-key-"][class*="_stop"]')]
    .some(e => [...e.classList].some(c => c.startsWith('st-key-') && c.endsWith('_stop')) && e.querySelector('button'));
  // the server knows where this page's count starts, and has applied every press sent. Nothing is sent a
  // second time: a message that never arrived went with a dropped socket, and Streamlit's reconnect sends
  // every widget's state again, this one's included; a second copy of one that did arrive would carry the
  // widgets' values from before it and undo what it moved (a step applied, then set back by the copy)
  const known = () => Array.isArray(lora.ack) && lora.ack[0] === keys.id;
  const applied = () => known() && lora.ack[1] >= keys.sent;
  const mark = () => { document.documentElement.dataset.loraKeysPending = (keys.n > keys.sent || !applied()) ? '1' : '0'; };
  const sendKeys = (n, log) => {
    keys.sent = n;
    lora.set('keys', {id: keys.id, n, log});
    mark();
  };
  // every message to the server goes from here: one at a time, each once the run before it is over
  lora.flush = () => {
    mark();
    if (!lora.set) return;  // the reporter has not loaded yet: the presses wait here, counted
    if (!known()) {
      // first the server learns where this page's count starts (0), then the presses follow
      if (!idle() || keys.announced) return;
      keys.announced = true;
      sendKeys(0, '');
      if (lora.sendSize) lora.sendSize();  // along with it: nothing sent before could have left a widget behind
      return;
    }
    const open = idle() && applied();
    if (keys.n > keys.sent) {
      // while the stepper plays, or the page follows a training job, the script never stops running:
      // the presses go at once (P must pause it; a clicker must move on from a slide that trains)
      if (open || playing() || following()) sendKeys(keys.n, keys.log);
      return;
    }
    if (open && lora.sendSize) lora.sendSize();  // a new size waits too: it carries every widget's value
  };
  // once a run is over, the widgets take the values it sent in React effects a moment later: wait for them
  lora.settled = () => { clearTimeout(keys.timer); keys.timer = setTimeout(lora.flush, 60); };
  const watch = () => {
    const a = app();
    if (!a) return setTimeout(watch, 200);
    new MutationObserver(() => { if (idle()) lora.settled(); })
      .observe(a, {attributes: true, attributeFilter: ['data-test-script-state']});
  };
  watch();
  setInterval(lora.flush, 1000);  // a safety net: a press counted as a run ended is sent all the same
  mark();

  const pageName = () => location.pathname.replace(/\\/+$/, '').split('/').pop();
  window.addEventListener('keydown', (e) => {
    const el = document.activeElement;
    const inWidget = el && el !== document.body && el.closest && el.closest(WIDGETS);
    if (e.key === 'Escape' && el && el !== document.body && el.blur) {
      el.blur();  // hands the keys back to the page (and to the slide)
      return;
    }
    const name = pageName(), spec = PAGES[name];
    if (!spec || e.ctrlKey || e.metaKey || e.altKey || e.shiftKey) return;
    const action = spec.keys[e.key.length === 1 ? e.key.toLowerCase() : e.key];
    if (!action || !document.querySelector(spec.box)) return;
    if (name === 'present' && inWidget) {
      // a widget focused by a click hands a clicker's keys to the slide; one kept by Tab, or a drag, keeps them
      if (el.dataset.loraFocus === 'keyboard' || pointerDown) return;
      if (el.getAttribute('aria-expanded') === 'true') return;  // an open list uses its arrows
      el.blur();
    } else if (typing(e)) {
      return;  // typing in a field (a slider, a number, a radio) keeps its keys, as Streamlit's shortcuts do
    }
    e.preventDefault();
    e.stopImmediatePropagation();  // the button's own shortcut must not move a second time
    if (e.repeat && (keys.n > keys.sent || !applied() || !idle())) return;  // a held key moves at the pace of the reruns
    keys.n += 1;
    keys.log = (keys.log + action).slice(-LOG_MAX);
    mark();
    lora.settled();
  }, true);
}
"""

_JS = _KEYS_JS + """
export default function(component) {
  const lora = window.__lora = window.__lora || {};
  loraKeys(lora);
  lora.set = component.setStateValue;
  lora.ack = (component.data || {}).keys;  // [the browser's id, the count of presses the server has applied]
  const measure = () => {
    const main = document.querySelector('[data-testid="stMain"]');
    return {vw: window.innerWidth, vh: window.innerHeight, main: main ? main.clientWidth : window.innerWidth};
  };
  const changed = () => {
    const now = measure(), last = lora.last || {};
    return now.vw !== last.vw || now.vh !== last.vh || Math.abs(now.main - (last.main || 0)) > 2;
  };
  lora.sendSize = () => {
    if (!lora.sizeDue || !changed()) return (lora.sizeDue = false);
    const now = lora.last = measure();
    lora.sizeDue = false;
    lora.set('size', now);
    document.documentElement.dataset.loraScreen = `${now.vw}x${now.vh}`;  // tests wait for it
  };
  // a resize: once it settles, and sent as the keys are (lora.flush)
  lora.report = () => {
    clearTimeout(lora.timer);
    lora.timer = setTimeout(() => { if (changed()) { lora.sizeDue = true; lora.flush(); } }, 120);
  };
  // the script calls this function again whenever the data it sends changes (each applied key press);
  // only a fresh mount, in a new element, reports (before a first click) even if nothing changed
  if (lora.root !== component.parentElement) lora.last = null;
  lora.root = component.parentElement;
  if (changed()) lora.sizeDue = true;
  lora.settled();
  if (lora.installed) return;
  lora.installed = true;
  window.addEventListener('resize', () => lora.report());
  const main = document.querySelector('[data-testid="stMain"]');
  if (main && window.ResizeObserver) new ResizeObserver(() => lora.report()).observe(main);

  // an equation wider than its box is typeset smaller until it fits (never cut, never scrolled)
  const fit = () => {
    document.querySelectorAll('[data-testid="stMain"] .katex-display').forEach((box) => {
      const k = box.querySelector(':scope > .katex');
      if (!k || !box.clientWidth) return;
      k.style.fontSize = '';  // measured at its own size each time: fonts or numbers may have changed
      const need = k.scrollWidth, room = box.clientWidth;
      if (need > room) k.style.fontSize = (1.21 * 0.98 * room / need).toFixed(3) + 'em';
    });
  };
  let queued = false;
  const queue = () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => { queued = false; fit(); });
    setTimeout(fit, 400);  // and again once KaTeX's own fonts have had time to arrive and widen the line
  };
  if (main) new MutationObserver(queue).observe(main, {childList: true, subtree: true, characterData: true});
  window.addEventListener('resize', queue);
  if (document.fonts) { document.fonts.addEventListener('loadingdone', queue); document.fonts.ready.then(queue); }

  // a tap on a chart of clickable cells picks the cell under it, as a click does: plotly picks a
  // point only from the hover a mouse makes first, and a touch makes none. The tapped cell is found
  // from the axes and reported as the selection a click on it would have made
  document.addEventListener('touchend', (e) => {
    const chart = e.target.closest && e.target.closest('[data-testid="stPlotlyChart"]');
    const gd = chart && chart.querySelector('.js-plotly-plot');
    const drag = chart && chart.querySelector('.nsewdrag');
    if (!gd || !drag || e.changedTouches.length !== 1 || !gd._fullLayout || gd._fullLayout.clickmode !== 'event+select') return;
    const markers = (gd._fullData || []).findIndex((tr) => tr.type === 'scatter' && String(tr.mode).includes('markers'));
    if (markers < 0) return;
    const t = e.changedTouches[0], box = drag.getBoundingClientRect();
    const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
    const x = Math.round(xa.p2d(t.clientX - box.left)), y = Math.round(ya.p2d(t.clientY - box.top));
    const tr = gd._fullData[markers], n = tr.x.length;
    for (let i = 0; i < n; i++) {
      if (tr.x[i] === x && tr.y[i] === y) {
        setTimeout(() => gd.emit('plotly_selected', {points: [{x, y, curveNumber: markers, pointNumber: i, pointIndex: i}]}), 60);
        return;
      }
    }
  }, true);
}
"""

_component = components.component("lora_screen", js=_JS)
# the keyboard alone, as a plain script (listen); the reporter's own copy finds it installed and leaves it
_LISTEN = ('<style>[data-testid="stLayoutWrapper"]:has(> .st-key-lora_keys) { display: none; }</style>'  # no room, no gap
           "<script>(() => {" + _KEYS_JS + "loraKeys(window.__lora = window.__lora || {});\n})();</script>")


class Screen(NamedTuple):
    vw: int     # window width, px
    vh: int     # window height, px
    main: int   # the main area's width (the window less an open sidebar), px

    def content_width(self, rem: float = 16.0) -> int:
        """The width figures may use: the main area less its padding and a few px of slack."""
        return max(int(self.main - 2 * PAD_REM * rem - 8), 200)


def listen() -> None:
    """The key handler, live from the moment the page is drawn (call it above the stepper or the slide's footer).

    A plain script among the page's first elements, in a container that takes no room; the reporter
    (:func:`report`) sends what it counts once it has loaded.
    """
    with st.container(key="lora_keys"):
        st.html(_LISTEN, unsafe_allow_javascript=True)


def report() -> None:
    """End the run: the notices said late join the page's top, and the reporter is mounted (it draws nothing)."""
    from . import notices  # here, not at the top: notices reads this module's key count

    notices.close()
    take_keys("")  # presses this page had no use for (its stepper was not shown) are dropped, not kept for later
    applied = st.session_state.get(_APPLIED)
    _component(key="screen", data={"keys": list(applied) if applied else None},  # says which presses were applied
               on_size_change=_read_in_the_run, on_keys_change=_read_in_the_run)


def _read_in_the_run() -> None:
    """The reporter's size and keys are read by the run they start (current(), take_keys); nothing happens before."""


KEY_ACTIONS = {
    "training": {"n": "next", "b": "back", "s": "step", "p": "play", "h": "reset"},
    "present": {"f": "next", "r": "prev"},
}
_LOG_MAX = 64     # the browser keeps the last 64 presses (screen.py's LOG_MAX)
_APPLIED = "_keys_applied"


def take_keys(page: str) -> list[str]:
    """The stepper's or the slides' key presses counted in the browser since a run last took them, in order.

    The browser sends a running count of presses and the log of the last ones, tagged with an id of its
    own (a new one each time the page loads). A count from an id this session has not seen yet only sets
    where counting starts: a reconnecting browser must not replay the presses an old session applied.
    Everything sent is bounded; anything malformed moves nothing. Presses for another page are dropped.
    """
    raw = _sent_keys()
    if raw is None:
        return []
    kid, n, log = raw["id"], raw["n"], raw["log"]
    seen = st.session_state.get(_APPLIED)
    st.session_state[_APPLIED] = (kid, n)
    if not (isinstance(seen, tuple) and len(seen) == 2 and seen[0] == kid):
        return []
    new = n - seen[1]
    if new <= 0:
        return []
    actions = KEY_ACTIONS.get(page, {})
    return [actions[c] for c in log[-min(new, len(log)):] if c in actions] if log else []


def _sent_keys() -> dict | None:
    """The key message the browser sent (its id, count and log), or None where it is missing or malformed."""
    state = st.session_state.get("screen")
    raw = state.get("keys") if isinstance(state, dict) else None
    if not isinstance(raw, dict):
        return None
    kid, n, log = raw.get("id"), raw.get("n"), raw.get("log")
    if not (isinstance(kid, str) and 0 < len(kid) <= 40 and isinstance(n, int) and not isinstance(n, bool)
            and 0 <= n <= 10 ** 9 and isinstance(log, str) and len(log) <= _LOG_MAX):
        return None
    return {"id": kid, "n": n, "log": log}


def key_count() -> tuple[str, int] | None:
    """The browser's own count of presses, as (its id, presses since the page loaded), if it sent a readable one.

    A press is the user acting (lora_app.widgets.notices); the same count sent again, or a new id
    announcing where a page's count starts, is not.
    """
    raw = _sent_keys()
    return (raw["id"], raw["n"]) if raw else None


def current() -> Screen:
    """The last size the browser reported, bounded (a tampered message cannot ask for a 10⁹ px layout)."""
    state = st.session_state.get("screen")
    raw = state.get("size") if isinstance(state, dict) else None
    raw = raw if isinstance(raw, dict) else {}
    out = {}
    for key, default in DEFAULT.items():
        try:
            value = float(raw.get(key, default))
        except (TypeError, ValueError):
            value = default
        out[key] = int(min(max(value, 240), 8000)) if math.isfinite(value) else default
    return Screen(**out)
