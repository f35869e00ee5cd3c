"""The browser's screen, reported to the server, and the keys that must never get stuck.

One hidden component (Streamlit's own ``components.v2``, inline JavaScript, nothing fetched)
reports the window's size and the main area's width whenever they change, so figures and
slides are laid out for the screen they are shown on. The same script keeps the keyboard
honest: Escape hands the keys back from any widget, and on Present a clicker's keys move the
slide even after the mouse left a slider or a select focused.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import streamlit as st
import streamlit.components.v2 as components

PAD_REM = 1.5          # the main area's padding left and right (style.py sets it, layouts subtract it)
DEFAULT = {"vw": 1280, "vh": 800, "main": 1280}  # until the browser has reported (and in AppTest)

_JS = """
export default function(component) {
  const lora = window.__lora = window.__lora || {};
  lora.set = component.setStateValue;
  const measure = () => {
    const main = document.querySelector('[data-testid="stMain"]');
    return {vw: window.innerWidth, vh: window.innerHeight, main: main ? main.clientWidth : window.innerWidth};
  };
  const send = () => {
    const now = measure(), last = lora.last || {};
    if (now.vw !== last.vw || now.vh !== last.vh || Math.abs(now.main - (last.main || 0)) > 2) {
      lora.last = now;
      lora.set('size', now);
      document.documentElement.dataset.loraScreen = `${now.vw}x${now.vh}`;  // tests wait for it
    }
  };
  lora.report = () => { clearTimeout(lora.timer); lora.timer = setTimeout(send, 120); };  // a resize: once it settles
  lora.last = null;  // a fresh mount reports at once (before a first click), even if nothing changed
  send();
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

  // which way focus arrived: a widget focused by a click or tap keeps no keys; one reached by Tab does
  let modality = 'keyboard', pointerDown = false;
  document.addEventListener('pointerdown', () => { modality = 'pointer'; pointerDown = true; }, true);
  document.addEventListener('pointerup', () => { pointerDown = false; }, true);
  document.addEventListener('pointercancel', () => { pointerDown = false; }, true);
  document.addEventListener('keydown', (e) => { if (e.key === 'Tab') modality = 'keyboard'; }, true);
  document.addEventListener('focusin', (e) => { e.target.dataset.loraFocus = modality; }, true);

  const WIDGETS = '[data-testid="stSlider"], [data-testid="stSelectbox"], [data-testid="stSelectSlider"], ' +
                  '[data-testid="stButtonGroup"], [data-testid="stNumberInput"], [data-testid="stRadio"]';
  const SLIDE_KEYS = {ArrowRight: 'next', PageDown: 'next', ArrowLeft: 'prev', PageUp: 'prev'};
  window.addEventListener('keydown', (e) => {
    const el = document.activeElement;
    const inWidget = el && el !== document.body && el.closest && el.closest(WIDGETS);
    if (e.key === 'Escape' && el && el !== document.body && el.blur) {
      el.blur();  // hands the keys back to the page (and to the slide)
      return;
    }
    if (!(e.key in SLIDE_KEYS) || !location.pathname.replace(/\\/+$/, '').endsWith('/present')) return;
    if (!inWidget || el.dataset.loraFocus === 'keyboard' || pointerDown) return;  // a widget kept by Tab, or a drag
    if (el.getAttribute('aria-expanded') === 'true') return;                       // an open list uses its arrows
    const button = document.querySelector(`.st-key-present_${SLIDE_KEYS[e.key]} button`);
    if (!button) return;
    e.preventDefault();
    e.stopImmediatePropagation();
    el.blur();
    if (!button.disabled) button.click();
  }, true);
}
"""

_component = components.component("lora_screen", js=_JS)


class Screen(NamedTuple):
    vw: int     # window width, px
    vh: int     # window height, px
    main: int   # the main area's width (the window less an open sidebar), px

    def content_width(self, rem: float = 16.0) -> int:
        """The width figures may use: the main area less its padding and a few px of slack."""
        return max(int(self.main - 2 * PAD_REM * rem - 8), 200)


def report() -> None:
    """Mount the reporter (once per run, at the end of the page; it draws nothing)."""
    _component(key="screen", on_size_change=_mark_rerun)
    st.session_state.pop("_screen_rerun", None)  # this run is over: the next one is the user's


def _mark_rerun() -> None:
    st.session_state["_screen_rerun"] = True


def is_screen_rerun() -> bool:
    """Whether this run was started by the browser reporting its size, not by the user."""
    return bool(st.session_state.get("_screen_rerun"))


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
