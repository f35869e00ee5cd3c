"""What a browser shows of a laid-out page, measured in the page itself (used by the viewport tests).

``measure(page)`` returns the overflow, the navigation's visibility, overlapping text boxes,
numbers wider than their cells or outside their chart, and the cell sizes of each figure row.
"""
from __future__ import annotations

JS = r"""
() => {
  const main = document.querySelector('[data-testid="stMain"]');
  const vw = window.innerWidth, vh = window.innerHeight;
  const box = (el) => { const r = el.getBoundingClientRect(); return {x: r.left, y: r.top, w: r.width, h: r.height}; };
  const out = {overflow: main ? main.scrollHeight - main.clientHeight : 0, hscroll: document.documentElement.scrollWidth - vw,
               nav: {}, overlaps: [], wide: [], clipped: [], rows: []};
  for (const [name, sel] of [['prev', '.st-key-present_prev button'], ['next', '.st-key-present_next button']]) {
    const el = document.querySelector(sel);
    const b = el && box(el);
    out.nav[name] = !!b && b.w > 0 && b.y >= 0 && b.y + b.h <= vh + 0.5 && b.x >= 0 && b.x + b.w <= vw + 0.5;
  }
  const label = [...document.querySelectorAll('.st-key-slide_nav p')].find(p => /Slide \d+ of \d+/.test(p.textContent));
  const lb = label && box(label);
  out.nav.number = !!lb && lb.y >= 0 && lb.y + lb.h <= vh + 0.5 && lb.x + lb.w <= vw + 0.5;

  // text boxes: HTML text blocks and every SVG text of the charts
  const items = [];
  const html = 'h1, [data-testid="stMarkdownContainer"] p, [data-testid="stMarkdownContainer"] li, ' +
               '[data-testid="stMetricValue"], [data-testid="stMetricLabel"], [data-testid="stMetricDelta"], ' +
               '[data-testid="stCaptionContainer"], button p, [data-testid="stWidgetLabel"] p, .katex-display > .katex, ' +
               '[data-testid="stTable"] td, [data-testid="stTable"] th, [data-testid="stTopNavLink"] span, ' +
               '[data-testid="stSliderThumbValue"], [data-testid="stSliderTickBarMin"], [data-testid="stSliderTickBarMax"]';
  const visible = (el) => !el.checkVisibility || el.checkVisibility({opacityProperty: true, visibilityProperty: true});
  for (const el of document.querySelectorAll(html)) {
    if (el.closest('[data-testid="stPlotlyChart"]') || !visible(el)) continue;
    // the text's own line boxes, not the element's (a label's box spans its column, its words do not)
    const range = document.createRange();
    range.selectNodeContents(el);
    for (const r of range.getClientRects()) {
      // wholly left or right of the window, nobody sees it: the closed sidebar, a tab list's tabs scrolled away
      if (r.width > 0.5 && r.height > 0.5 && r.right > 0 && r.left < vw) {
        items.push({el, b: {x: r.left, y: r.top, w: r.width, h: r.height}, what: el.textContent.slice(0, 40)});
      }
    }
  }
  const charts = [...document.querySelectorAll('[data-testid="stPlotlyChart"]')];
  for (const c of charts) {
    const svgBox = box(c.querySelector('.main-svg') || c);
    const texts = c.querySelectorAll('.gtitle, .gtitle-subtitle, .xtick text, .ytick text, .textpoint text, .legendtext, ' +
                                     '.annotation-text, .cbaxis text, .g-xtitle text, .g-ytitle text');
    for (const t of texts) {
      const b = box(t); if (!(b.w > 0 && b.h > 0)) continue;
      items.push({el: t, b, what: t.textContent.slice(0, 40)});
      if (b.x < svgBox.x - 1 || b.y < svgBox.y - 1 || b.x + b.w > svgBox.x + svgBox.w + 1 || b.y + b.h > svgBox.y + svgBox.h + 1)
        out.clipped.push(t.textContent.slice(0, 40));
    }
    // cells: the plot area over the number of ticks (every index is a tick up to 16)
    const distinct = (sel) => new Set([...c.querySelectorAll(sel)].map(t => t.textContent)).size;
    const nx = distinct('.xtick text'), ny = distinct('.ytick text');
    const drag = c.querySelector('.nsewdrag');
    if (c.querySelector('.hm') && drag && nx && ny && nx <= 16 && ny <= 16) {
      const d = box(drag), cw = d.w / nx, ch = d.h / ny;
      c.dataset.cell = JSON.stringify([cw, ch]);
      for (const t of c.querySelectorAll('.textpoint text')) {
        const b = box(t);
        if (b.w > cw - 1 || b.h > ch) out.wide.push([t.textContent, Math.round(b.w), Math.round(cw)]);
      }
    }
  }
  // pairs of text boxes that intersect (more than 2 px each way: line boxes include their leading), other than
  // an element and its own parts
  for (let i = 0; i < items.length; i++) for (let j = i + 1; j < items.length; j++) {
    const a = items[i], b = items[j];
    if (a.el === b.el || a.el.contains(b.el) || b.el.contains(a.el)) continue;
    const ix = Math.min(a.b.x + a.b.w, b.b.x + b.b.w) - Math.max(a.b.x, b.b.x);
    const iy = Math.min(a.b.y + a.b.h, b.b.y + b.b.h) - Math.max(a.b.y, b.b.y);
    if (ix > 2 && iy > 2) out.overlaps.push([a.what, b.what]);
  }
  // equations: never wider than their box (screen.py typesets a wide one smaller)
  out.equations = [...document.querySelectorAll('[data-testid="stMain"] .katex-display')].filter(d => {
    const k = d.querySelector(':scope > .katex');
    return k && k.getBoundingClientRect().width > d.getBoundingClientRect().width + 1;
  }).map(d => d.textContent.slice(0, 40));
  // figure rows: one cell size for every matrix in a row
  for (const row of document.querySelectorAll('[class*="st-key-row_"]')) {
    const sizes = [...row.querySelectorAll('[data-testid="stPlotlyChart"]')]
      .map(c => c.dataset.cell && JSON.parse(c.dataset.cell)).filter(Boolean);
    if (sizes.length > 1) out.rows.push(sizes.map(s => [Math.round(s[0] * 10) / 10, Math.round(s[1] * 10) / 10]));
  }
  return out;
}
"""


def measure(page) -> dict:
    return page.evaluate(JS)


def problems(m: dict, slide: bool = True, tolerance: float = 2.0) -> list[str]:
    """Everything wrong with a measurement, as sentences (empty when the layout is right)."""
    out = []
    if slide and m["overflow"] > 1:
        out.append(f"the slide overflows by {m['overflow']} px")
    if m["hscroll"] > 1:
        out.append(f"the page scrolls sideways by {m['hscroll']} px")
    if slide:
        out += [f"{name} is not visible" for name, ok in m["nav"].items() if not ok]
    out += [f"text overlaps: {a!r} and {b!r}" for a, b in m["overlaps"]]
    out += [f"number {t!r} is {w} px wide in a {c} px cell" for t, w, c in m["wide"]]
    out += [f"text clipped by its chart: {t!r}" for t in m["clipped"]]
    out += [f"equation wider than its box: {t!r}" for t in m.get("equations", [])]
    for sizes in m["rows"]:
        flat = [v for s in sizes for v in s]
        if max(flat) - min(flat) > tolerance:
            out.append(f"cells differ within a row: {sizes}")
    return out
