"""The Present page's slides. Each one draws with the pages' own builders and cached core calls.

A slide is laid out for the screen it is shown on: :class:`SlideSpace` starts from the window's
height, takes off what each text, control and equation needs, and gives the rest to the figures,
whose cells then take the largest size that fits (``figures.row_layout``). A figure that would
not fit is dropped, and the slide says where to find it.
"""
from __future__ import annotations

import math
import re
from typing import NamedTuple

import streamlit as st

from lora_core import param_counts

from . import figures, latex, ui
from .compute import explore_arrays, max_steps_for, training_run
from .compute.attention import attention_arrays, param_table
from .compute.scale import scale_numbers
from .config import ExploreConfig, TrainingConfig
from .config.attention import AttentionConfig
from .config.present import FONT_SIZES
from .config.scale import ScaleConfig
from .screen import PAD_REM, Screen
from .config.real import DEFAULT_LORA, LORA_KEYS, WIDGET_KEYS, real_config
from .config.real import DEFAULTS as REAL_DEFAULTS
from .text import present as text

MATTERS_MODEL, MATTERS_R = "llama-2-7b", 8
LINE = 1.35        # line height of slide text, in em
FOOTER_REM = 3.9   # the fixed bar with Previous, Next and the slide number
MIN_CHART = 150    # px: a line chart smaller than this is dropped rather than squeezed
ROW_CAPTION = "x" * 80  # as long as ui.matrix_row's caption on rounded or dropped numbers
NO_DELTA = "ΔA_Q, ΔB_Q (the step itself) and the loss curve are on the Training page: no room for them on this screen."
NO_CURVE = "The loss curve of this run is on the Training page: no room for it on this screen."


def eq_height(rows: int, size: float, rem: float) -> float:
    """px of a displayed equation whose tallest matrix has ``rows`` rows, at LaTeX size ``size`` (\\large = 1.2).

    Measured in Chromium: KaTeX's em is 1.21 rem, a matrix row takes 1 em and the display 1.3 em
    more (117 px for a 5-row matrix at \\footnotesize with 19.2 px rem); five per cent of slack.
    """
    return 1.05 * (rows + 1.3) * size * 1.21 * rem


def sizes(scr: Screen, font: str) -> tuple[float, float]:
    """(rem px, figure font scale) for this screen and text size.

    A slide keeps its proportions from a 1024×768 projector to a 4K screen: text is sized from the
    window (the height, or the width when the window is narrow), then by the text-size control.
    """
    unit = min(scr.vh / 1080, scr.vw / 1440)
    rem = max(FONT_SIZES.get(font, FONT_SIZES["L"]) * unit, 11.0)
    return rem, rem / 18


class SlideSpace:
    """What is left of the window as a slide is drawn, in px; every part takes its height from it."""

    def __init__(self, scr: Screen, font: str, title: str):
        self.rem, self.scale = sizes(scr, font)
        self.width = scr.vw - 2 * PAD_REM * self.rem - 8
        self.left = scr.vh - (1.6 + FOOTER_REM) * self.rem  # top padding, the footer, and a line of slack
        self.left -= self._lines(title, 1.5 * self.rem * 0.56) * 1.5 * self.rem * 1.2 + 0.4 * self.rem
        self.notes: list[str] = []

    def _lines(self, words: str, em_px: float, indent: float = 0) -> int:
        plain = re.sub(r"[*_`]", "", words)
        return max(1, math.ceil(len(plain) * em_px * 1.08 / max(self.width - indent, 100)))

    def caption_height(self, words: str) -> float:
        return self._lines(words, 0.53 * 0.875 * self.rem) * 1.5 * 0.875 * self.rem

    def take(self, px: float) -> None:
        self.left -= px + self.rem  # every element is followed by the block's gap of 1rem

    def markdown(self, md: str) -> None:
        st.markdown(md)
        self.take(self.text_height(md))

    def text_height(self, md: str) -> float:
        paras = [p.strip() for p in re.split(r"\n(?=- )|\n\s*\n", md.strip()) if p.strip()]
        h = 0.0
        for p in paras:
            bullet = p.startswith("- ")
            h += self._lines(p, 0.53 * self.rem, 1.6 * self.rem if bullet else 0) * LINE * self.rem + 0.3 * self.rem
        return h

    def controls(self, ex: ExploreConfig) -> None:
        from lora_core import PRESETS
        # widths in rem, so the preset's name is never cut and both scale with the text
        with st.container(horizontal=True, gap="large"):
            st.selectbox("Preset", PRESETS, key="preset", format_func=ui.PRESET_LABELS.get, persist_state="session",
                         width=round(13 * self.rem))
            st.slider("r: LoRA rank", 1, max(min(ex.d, ex.k), 2), key="r", disabled=min(ex.d, ex.k) < 2,
                      persist_state="session", width=round(min(18 * self.rem, self.width - 15 * self.rem)))
        self.take(4.6 * self.rem)

    def latex(self, tex: str, rows: int = 1, size: float = 1.2) -> None:
        """An equation; ``rows`` is its tallest matrix (1 for a plain line). The app's script fits its width."""
        st.latex(tex)
        self.take(eq_height(rows, size, self.rem))

    def metrics(self, n_lines: int = 1) -> None:
        self.take((5.4 + 1.3 * (n_lines - 1)) * self.rem)

    def table(self, rows: int) -> None:
        self.take((rows + 1) * 1.95 * self.rem)  # measured: 1.87 rem a row of st.table

    def cell(self, items, share: float = 1.0) -> tuple[int, int]:
        """(the cell px a row would get with ``share`` of the height left, the px at which its numbers print in full)."""
        height = max((self.left - self.caption_height(ROW_CAPTION)) * share * 0.97, 40)
        cap = round(110 * self.scale)
        cell = figures.row_layout(items, self.width, height, self.scale, gap=self.rem, cell_max=cap).cell
        full = max(figures.natural_cell(M, kw.get("decimals"), kw.get("text_size"), self.scale) for M, _, kw in items)
        return cell, full

    def row(self, items, key: str, share: float = 1.0) -> None:
        """Matrices side by side at one cell size, using ``share`` of the height still left.

        A line is kept free under the row for the caption that says when numbers were rounded or dropped.
        """
        self.left -= self.caption_height(ROW_CAPTION)
        height = max(self.left * share * 0.97, 40)
        ui.matrix_row(items, key, width=self.width, height=height, scale=self.scale, rem=self.rem,
                      cell_max=round(110 * self.scale))
        self.left -= height + self.rem

    def chart_height(self, wanted: float) -> int | None:
        """The height a line or bar chart may take (all that is left, up to ``wanted``), or None if too little."""
        h = min(self.left * 0.97 - self.rem, wanted * self.scale)
        if h < MIN_CHART * max(self.scale, 1):
            return None
        self.left -= h + self.rem
        return int(h)


def what(ex: ExploreConfig, sp: SlideSpace) -> None:
    sp.markdown(text.WHAT)
    res = explore_arrays(ex)
    z = figures.symmetric_range(res.A, res.B)
    sp.row([(res.W, "W_Q", {"role": "frozen"}), (res.A, "A_Q", {"role": "trainable", "zmax": z}),
            (res.B, "B_Q", {"role": "trainable", "zmax": z})], "what")


def equation(ex: ExploreConfig, sp: SlideSpace) -> None:
    res = explore_arrays(ex)
    sp.latex(r"\Large Q = X\,(W_Q + s\,A_Q B_Q)", size=1.44)
    sp.markdown(text.EQUATION)
    sp.controls(ex)
    if latex.fits_equation(res.X, res.W, res.A, res.B):
        rows_delta, rows_fwd = res.W.shape[0], max(res.X.shape[0], res.W.shape[0])
        # the largest LaTeX size at which both equations fit what is left
        for size, cmd in ((1.2, r"\large "), (1.0, ""), (0.9, r"\small "), (0.8, r"\footnotesize "), (0.7, r"\scriptsize ")):
            if eq_height(rows_delta, size, sp.rem) + eq_height(rows_fwd, size, sp.rem) + 2 * sp.rem <= sp.left:
                break
        both = eq_height(rows_delta, size, sp.rem) + eq_height(rows_fwd, size, sp.rem) + 2 * sp.rem <= sp.left
        sp.latex(cmd + latex.delta_equation(res.A, res.B, res.delta_W, res.scaling), rows_delta, size)
        if both:
            sp.latex(cmd + latex.forward_equation(res.X, res.W_merged, res.q), rows_fwd, size)
        else:
            st.caption("Q = X·(W_Q + ΔW_Q) with these numbers is on slide 5, and on the Explore page: "
                       "this screen has room for one equation.")
    else:
        sp.row([(res.delta_W, "ΔW_Q = s·A_Q·B_Q", {}), (res.q, "Q", {})], "eq")


def why(ex: ExploreConfig, sp: SlideSpace) -> None:
    sp.markdown(text.WHY)
    seed, cur, big = param_counts(5, 3, 2), param_counts(ex.d, ex.k, ex.r), param_counts(4096, 4096, 8)
    cols = st.columns(3)
    for col, label, c in ((cols[0], "the blog's 5×3, r = 2", seed), (cols[1], f"this {ex.d}×{ex.k}, r = {ex.r}", cur),
                          (cols[2], "a 4096×4096 projection, r = 8", big)):
        col.metric(label, f"{c.lora:,} trained", f"{c.lora - c.full:+,} vs {c.full:,} for full fine-tuning",
                   delta_color="inverse", border=True)
    sp.metrics(2 if sp.width < 1100 else 1)


def matrices(ex: ExploreConfig, sp: SlideSpace) -> None:
    sp.markdown(text.MATRICES)
    sp.controls(ex)
    res = explore_arrays(ex)
    z = figures.symmetric_range(res.A, res.B)
    sp.row([(res.X, "X", {}), (res.W, "W_Q", {"role": "frozen"}), (res.A, "A_Q", {"role": "trainable", "zmax": z}),
            (res.B, "B_Q", {"role": "trainable", "zmax": z})], "mat")


def compare(ex: ExploreConfig, sp: SlideSpace) -> None:
    sp.markdown(text.COMPARE)
    sp.controls(ex)
    res = explore_arrays(ex)
    z = figures.symmetric_range(res.base, res.q, res.delta_q)
    sp.row([(res.base, "Q = X·W_Q", {"zmax": z}), (res.q, "Q = X·(W_Q + ΔW_Q)", {"zmax": z}),
            (res.delta_q, "ΔQ = difference", {"zmax": z, "show_scale": True})], "cmp")


def _first_step(ex: ExploreConfig):
    # the Training page's default run, shortened where its sizes make 300 steps more than a slide may wait for
    cfg = TrainingConfig(ex, steps=min(TrainingConfig.steps, max_steps_for(ex.n, ex.d, ex.k, ex.r)))
    return cfg, training_run(cfg)


def forward(ex: ExploreConfig, sp: SlideSpace) -> None:
    sp.markdown(text.FORWARD)
    cfg, run = _first_step(ex)
    A, B = run.before(1)
    q = run.at("q", 1)
    z = figures.symmetric_range(q, run.T)
    sp.take(2.2 * 1.2 * 1.21 * sp.rem)  # the loss equation under the row
    sp.row([(run.X, "X", {}), (run.W + run.scaling * A @ B, "W_Q + s·A_Q·B_Q", {}),
            (q, "Q", {"zmax": z}), (run.T, "target T", {"zmax": z})], "fwd")
    st.latex(r"\large " + latex.loss_equation(q - run.T, float(run.losses[0])))


def backward(ex: ExploreConfig, sp: SlideSpace) -> None:
    sp.markdown(text.BACKWARD)
    cfg, run = _first_step(ex)
    rec = run.step(1)
    gA, gB = rec.grad_A, rec.grad_B
    z = figures.symmetric_range(gA, gB)
    sp.take(3.6 * 1.2 * 1.21 * sp.rem)  # the gradient equations under the row
    sp.row([(rec.grad_q, "G = ∂L/∂Q", {}), (gB, "∂L/∂B_Q", {"zmax": z, "role": "trainable"}),
            (gA, "∂L/∂A_Q", {"zmax": z, "role": "trainable"}), (run.W, "W_Q: no gradient", {"role": "frozen"})], "bwd")
    st.latex(r"\large \frac{\partial L}{\partial B_Q} = s\,(XA_Q)^\top G \qquad \frac{\partial L}{\partial A_Q} = "
             r"s\,X^\top G\,B_Q^\top \qquad \frac{\partial L}{\partial W_Q}\ \text{: none (frozen)}")


def adamw(ex: ExploreConfig, sp: SlideSpace) -> None:
    sp.markdown(text.ADAMW)
    cfg, run = _first_step(ex)
    A0, B0 = run.before(1)
    rec = run.step(1)
    items = [(A0, "A_Q before", {"role": "trainable"}), (rec.update_A, "ΔA_Q", {}),
             (run.at("A", 1), "A_Q after", {"role": "trainable"}), (B0, "B_Q before", {"role": "trainable"}),
             (rec.update_B, "ΔB_Q", {}), (run.at("B", 1), "B_Q after", {"role": "trainable"})]
    # the loss curve takes a third of the height only if the matrices keep their numbers in full without it
    cell, full = sp.cell(items, 0.64)
    curve = cell >= full and sp.left * 0.34 >= MIN_CHART * max(sp.scale, 1) + sp.rem
    if not curve:
        sp.take(sp.caption_height(NO_DELTA))
        six, fewer = sp.cell(items)[0], [items[0], items[2], items[3], items[5]]
        if six < full and sp.cell(fewer)[0] > six:  # six are too many to read here: before and after only
            items = fewer  # one caption then says where both the steps and the curve are
    sp.row(items, "adam", share=0.64 if curve else 1.0)
    height = sp.chart_height(420) if curve else None
    if not height:
        st.caption(NO_DELTA if len(items) == 4 else NO_CURVE)
    else:
        ui.chart(st, figures.loss_curve(run.losses, run.full_losses, 1, lora_count=run.lora_count,
                                        full_count=run.full_count, floor=run.floor, height=height, scale=sp.scale,
                                        width=sp.width),
                 key="slide_loss")



def where(ex: ExploreConfig, sp: SlideSpace) -> None:
    sp.markdown(text.WHERE)
    res = attention_arrays(AttentionConfig(ex, lora=("q", "v")))
    plain, adapted = res.plain.weights[0], res.adapted.weights[0]
    change = adapted - plain
    table = param_table(res.rows)
    item = figures.attention.attention_item
    items = [item(plain, "attention without LoRA", decimals=None), item(adapted, "with LoRA on W_Q, W_V", decimals=None),
             item(change, "change", zmax=figures.symmetric_range(change), decimals=None)]
    table_h = (len(table) + 1) * 1.95 * sp.rem + sp.rem
    sp.left -= table_h
    cell, full = sp.cell(items)
    sp.left += table_h
    with_table = cell >= full
    layer = table.iloc[-1]
    summary = (f"In this layer LoRA trains **{int(layer.iloc[-1]):,}** numbers (A and B on W_Q and W_V); "
               f"**{int(layer.iloc[-2]):,}** stay frozen. The Attention page has the table, matrix by matrix.")
    if with_table:
        sp.table(len(table))
    else:
        sp.take(sp.text_height(summary))
    sp.row(items, "where")
    if with_table:
        st.table(table, hide_index=True)
    else:  # the table needs more room than this screen has: its totals in one sentence
        st.markdown(summary)


def matters(ex: ExploreConfig, sp: SlideSpace) -> None:
    num = scale_numbers(ScaleConfig(MATTERS_MODEL, ("q", "v"), MATTERS_R))
    sp.markdown(text.MATTERS.format(model=num.spec.name, r=MATTERS_R))
    human = figures.scale.human_bytes
    cols = st.columns(3)
    for col, label, value, versus in (
        (cols[0], "trainable parameters", f"{num.trainable:,}", f"{num.share:.3%} of {num.spec.base_params:,}"),
        (cols[1], "adapter file (fp16)", human(num.adapter_fp16), f"the whole model: {human(num.model_fp16)}"),
        (cols[2], "training memory", human(num.memory.lora.total), f"full fine-tuning: {human(num.memory.full.total)}"),
    ):
        col.metric(label, value, versus, delta_color="off", delta_arrow="off", border=True)
    sp.metrics(2 if sp.width < 1100 else 1)
    height = sp.chart_height(400)
    if height:
        ui.chart(st, figures.scale.memory_bars(num.memory.full._asdict(), num.memory.lora._asdict(),
                                               "Weights, gradients and AdamW states", height=height, scale=sp.scale,
                                               width=sp.width),
                 key="matters_mem")
    else:
        st.caption("The memory chart is on the Scale page: this screen has no room for it under the numbers.")


# --- the real transformer (the Real model page's runs, trained on the server's worker) ---------------

BAR_REM = 1.0      # the progress bar under its status line (the line is measured as a caption)
STATUS = "x" * 78  # as long as run_ui.follow's status line ("Training: run 3 of 20, Q+V · r = 4 on …")
BUTTON_REM = 9.5   # the width of a button with its icon and the gap after it
STOPPED = "x" * 150  # as long as run_ui.stopped_note's warning


def real_config_now():
    """The Real model page's current settings: the session's ``real_*`` widgets where set, else the page's defaults."""
    defaults = {**REAL_DEFAULTS, **{key: t in DEFAULT_LORA for t, key in LORA_KEYS.items()}}
    values = {key: st.session_state.get(key, defaults[key]) for key in WIDGET_KEYS}
    return real_config(values, st.session_state.get("_real_last_good"))[0]


def _title_room(fig) -> float:
    """The width a figure needs for its title and subtitle (they start 2 % in from its left edge)."""
    from .figures.sizes import text_width

    t = fig.layout.title
    need = text_width(t.text or "", t.font.size or 17)
    if t.subtitle and t.subtitle.text:
        need = max(need, text_width(t.subtitle.text, t.subtitle.font.size or 13))
    return need * 1.08 / 0.98 + 12


def _height_at(sp: SlideSpace, md: str, width: float) -> float:
    """The height of ``md`` in a column ``width`` px wide."""
    full = sp.width
    sp.width = width
    try:
        return sp.text_height(md)
    finally:
        sp.width = full


class _Runs:
    """The runs a slide draws, and the row above its figures that trains the missing ones.

    The row holds the button (greyed while a run goes on) and, while one does, Stop beside it, as on the
    Real model page; a progress bar goes under the row while the runs train. Nothing else on the slide moves.
    """

    def __init__(self, settings: tuple, key: str):
        from . import jobs
        from .compute import real as compute
        from .run_ui import stopped_note, take_stop

        self.settings, self.key, self.stop_key = settings, key, f"{key}_stop"
        job = jobs.job_for(settings)
        take_stop(self.stop_key, job)  # a click on Stop: this session stops following the job
        held = st.session_state.get(f"_{self.stop_key}_stopped")
        self.held = held is not None and held[0] == settings
        self._note = lambda: stopped_note(self.stop_key, settings)
        self.missing = sum(compute.run(x) is None for x in settings)
        job = jobs.job_for(settings) if self.missing else None
        self.job = job if job is not None and not self.held else None

    def prompt(self) -> str:
        return text.train_prompt(self.missing)

    def height(self, sp: SlideSpace) -> float:
        """The height of what :meth:`draw` puts above the figures: the row, the progress bar, a stopped run's note."""
        if not self.missing:
            return 0.0
        h = max(2.5 * sp.rem, _height_at(sp, self.prompt(), sp.width - 2 * BUTTON_REM * sp.rem)) + sp.rem
        if self.job is not None:
            h += sp.caption_height(STATUS) + BAR_REM * sp.rem + sp.rem
        if self.held:
            h += sp.text_height(STOPPED) + 2 * sp.rem + sp.rem  # the warning's padding
        return h

    def reserve(self, sp: SlideSpace) -> None:
        if self.missing:
            sp.take(self.height(sp) - sp.rem)

    def draw(self, label: str, draw) -> None:
        """Draw ``draw(tag)``: at once when every run is there, under the row when some are missing, or live."""
        from . import jobs
        from .run_ui import clear_stop, follow, session

        if not self.missing:
            draw("final")
            return
        if self.held:
            self._note()
        running = self.job is not None
        row = st.container(horizontal=True, gap="small", vertical_alignment="center", key=f"{self.key}_row")
        if row.button(label, key=self.key, type="primary", icon=":material/play_arrow:", disabled=running,
                      width="content", help="Runs on this server's worker; finished runs are kept, so a second "
                                            "press anywhere is instant."):
            clear_stop(self.stop_key)
            try:
                jobs.submit(self.settings, session())
            except jobs.Busy as e:
                st.error(str(e))
            else:
                st.rerun()  # the next run follows the job
        if not running:
            row.markdown(self.prompt())
            draw("final")
            return
        snap = follow(self.job, lambda snap, i: draw(i), "Training", self.stop_key, row)  # a clicker press ends it
        if snap.state == "failed":
            st.error(f"The run failed: {snap.error}")
            return
        st.rerun()  # the finished slide, with its sentence


def real(ex: ExploreConfig, sp: SlideSpace) -> None:
    from lora_core.finetune import TARGET_LABELS
    from lora_core.tiny import TASKS

    from . import jobs
    from .compute import real as compute

    cfg = real_config_now()
    s = cfg.settings
    pair = (s,) if s.full else (s, compute.full_settings(s))
    what = TASKS[s.task].split(" (")[0]
    if s.full:
        intro = text.REAL_FULL.format(task=s.task, what=what)
    else:
        layers = "all layers" if not s.layers else f"layer {s.layers[0] + 1}"
        placement = " and ".join(TARGET_LABELS[t] for t in s.targets)
        intro = text.REAL.format(task=s.task, what=what, placement=f"{placement} ({layers}), r = {s.r}")
    runs = _Runs(pair, "slide_real_train")
    numbers = ""
    if not runs.missing:
        done = [compute.run(x) for x in pair]
        lora_run, full_run = (None, done[0]) if s.full else done
        numbers = text.real_sentence(
            s.steps, None if lora_run is None else (lora_run.accuracy, lora_run.trainable, lora_run.total),
            (full_run.accuracy, full_run.trainable))
    _intro(sp, intro, (sp.text_height(numbers) + sp.rem if numbers else runs.height(sp)) + _curves_min_h(sp, sp.width)
           + sp.caption_height(text.NO_SEQUENCE) + 2 * sp.rem)
    if numbers:
        sp.markdown(numbers)
    runs.reserve(sp)
    lay = _pair_layout(sp, cfg)

    def draw(tag) -> None:
        done = [compute.run(x) for x in pair]
        first = done[0]
        job = jobs.job_for(pair)
        live = job.snapshot().live if job is not None and first is None else None
        if live is not None and live.settings == pair[0]:
            first = live  # the first run as it trains
        second = None if s.full else done[1]
        _draw_pair(sp, lay, cfg, first, second, done[0], tag)

    runs.draw("Train now", draw)


def _curves_min_h(sp: SlideSpace, width: float) -> int:
    """The least height of the run's curves at ``width``: the two plots (loss, accuracy) need 150 px (times the scale)."""
    m = figures.real.run_curves([1.0], [0], [0.5], full=([1.0], [0], [0.5]), scale=sp.scale, width=width).layout.margin
    return int(m.t + m.b + 150 * sp.scale)


def _intro(sp: SlideSpace, md: str, after: float) -> None:
    """The slide's opening words, unless the parts after them (``after`` px at the least) would then not fit."""
    if (sp.left - sp.text_height(md) - sp.rem) * 0.97 - sp.rem >= after:
        sp.markdown(md)
    else:
        st.caption(text.NO_INTRO)
        sp.take(sp.caption_height(text.NO_INTRO))


def _sequence_figure(cfg, run, sp: SlideSpace, width: float, height: int | None = None):
    from .compute import real as compute

    out = compute.outputs(cfg, run)
    rows = {"base model": out.base} | ({"adapted model": out.adapted} if out.adapted is not None else {})
    return figures.real.sequence_grid(rows, out.target, tokens=list(cfg.tokens),
                                      target_label=f"right answer ({cfg.settings.task})", scale=sp.scale,
                                      width=width, height=height)


class _PairLayout(NamedTuple):
    side: bool                          # the curves and the sequence side by side
    curves: tuple[int, int] | None      # (width, height), None: dropped
    sequence: tuple[int, int] | None


def _pair_layout(sp: SlideSpace, cfg) -> _PairLayout:
    """Where the run's curves and the typed sequence go: side by side, one above the other, or one of them only."""
    probe = _sequence_figure(cfg, None, sp, sp.width)  # the base model's row only
    natural = int(probe.layout.height + round(round(19 * sp.scale) * 2.1))  # and the adapted model's row
    m = probe.layout.margin
    least = int(m.t + m.b + 4 * round(19 * sp.scale) * 1.35)  # each row a little taller than its digits
    from .figures.sizes import text_width
    cell = text_width("9 ✗", round(19 * sp.scale)) * 1.1 + 6  # a digit and its mark, with the cells' gap
    seq_min_w = max(probe.layout.margin.l + 8 * cell + 12, _title_room(probe))
    curves_min_w = 360 * sp.scale

    curves_min_h = lambda width: _curves_min_h(sp, width)  # noqa: E731
    room = sp.left * 0.97 - sp.rem
    gap = 2 * sp.rem  # the row's gap, with slack: two figures that do not fit side by side would wrap
    if sp.width >= max(seq_min_w + curves_min_w + gap, 720):
        seq_w = max(seq_min_w, min(0.42 * sp.width, 560 * sp.scale))
        h = int(min(room, max(520 * sp.scale, curves_min_h(sp.width - seq_w - gap))))
        if h >= curves_min_h(sp.width - seq_w - gap) and h >= natural:
            sp.left -= h + sp.rem
            return _PairLayout(True, (int(sp.width - seq_w - gap), h), (int(seq_w), natural))
    w = int(sp.width)
    if room - least - sp.rem >= curves_min_h(w):  # one above the other: the curves get what the sequence leaves
        seq_h = int(min(natural, room - sp.rem - curves_min_h(w)))
        h = int(min(room - seq_h - sp.rem, max(460 * sp.scale, curves_min_h(w))))
        sp.left -= seq_h + h + 2 * sp.rem
        return _PairLayout(False, (w, h), (w, seq_h))
    cap = sp.caption_height(text.NO_SEQUENCE) + sp.rem
    if room - cap >= curves_min_h(w):
        h = int(min(room - cap, max(460 * sp.scale, curves_min_h(w))))
        sp.left -= h + sp.rem + cap
        return _PairLayout(False, (w, h), None)
    cap = sp.caption_height(text.NO_CURVES) + sp.rem
    if room - cap >= least:
        seq_h = int(min(natural, room - cap))
        sp.left -= seq_h + sp.rem + cap
        return _PairLayout(False, None, (w, seq_h))
    return _PairLayout(False, None, None)


def _draw_pair(sp: SlideSpace, lay: _PairLayout, cfg, first, second, adapted_run, tag) -> None:
    s = cfg.settings
    parts = []
    if lay.curves is not None:
        w, h = lay.curves
        losses, steps, accs = ((), (), ()) if first is None else (first.losses, first.eval_steps, first.accuracies)
        full = None if second is None else (second.losses, second.eval_steps, second.accuracies)
        names = ("full fine-tuning", "full fine-tuning") if s.full else ("LoRA", "full fine-tuning")
        parts.append((figures.real.run_curves(losses, steps, accs, full=full, total_steps=s.steps, names=names,
                                              width=w, height=h, scale=sp.scale), f"slide_real_curves_{tag}"))
    if lay.sequence is not None:
        w, h = lay.sequence
        parts.append((_sequence_figure(cfg, adapted_run, sp, w, h), f"slide_real_seq_{tag}"))
    box = st.container(horizontal=True, gap="small") if lay.side else st.container()
    for fig, key in parts:
        ui.chart(box, fig, key=key, width="content")
    if lay.curves is None:
        st.caption(text.NO_FIGURE if lay.sequence is None else text.NO_CURVES)
    elif lay.sequence is None:
        st.caption(text.NO_SEQUENCE)


class _WordsLayout(NamedTuple):
    fig: tuple[int, int] | None    # (width, height) of the figure, None: dropped
    words: float | None            # the sentence's width, None: dropped (a caption says where it is)
    side: bool                     # the sentence beside the figure (else under it)
    rem: float = 16.0


def _figure_and_words(sp: SlideSpace, natural: int, min_h, words: str, no_words: str,
                      min_w: float = 0) -> _WordsLayout:
    """A figure and its sentence: side by side on a wide screen, else the sentence under it, or dropped.

    ``words`` is the sentence as long as it will be once every run has finished; ``min_h(width)`` the
    least height at which the figure still reads at that width.
    """
    room = sp.left * 0.97 - sp.rem
    if sp.width >= 900:
        fig_w = int(max(min(0.56 * sp.width, 900 * sp.scale), min_w))
        words_w = sp.width - fig_w - 1.5 * sp.rem
        need = _height_at(sp, words, words_w - 3 * sp.rem)  # its column, less the gap and what the figure's takes
        h = int(min(room, max(natural, min_h(fig_w))))
        if h >= min_h(fig_w) and need <= room:
            sp.left -= max(h, need) + sp.rem
            return _WordsLayout((fig_w, h), words_w, True, sp.rem)
    w = int(sp.width)
    need = sp.text_height(words) + sp.rem
    if room - need >= min_h(w):
        h = int(min(room - need, max(natural, min_h(w))))
        sp.left -= h + sp.rem + need
        return _WordsLayout((w, h), w, False)
    cap = sp.caption_height(no_words) + sp.rem
    h = int(min(room - cap, max(natural, min_h(w))))
    if h >= min_h(w):
        sp.left -= h + sp.rem + cap
        return _WordsLayout((w, h), None, False)
    return _WordsLayout(None, None, False)


def _draw_placed(lay: _WordsLayout, build, key: str, words: str, progress: str, no_words: str) -> None:
    """Draw the figure ``build(width, height)`` and its sentence where :func:`_figure_and_words` put them."""
    if lay.fig is None:
        st.caption(text.NO_FIGURE)
        return
    if lay.side:
        left, right = st.columns([lay.fig[0] + 2 * lay.rem, lay.words - 2 * lay.rem], gap="medium")
    else:
        left = right = st.container()
    ui.chart(left, build(*lay.fig), key=key, width="content")
    if lay.words is None:
        st.caption(no_words)
    elif words:
        right.markdown(words)
    else:
        right.caption(progress)


def real_grid(ex: ExploreConfig, sp: SlideSpace) -> None:
    import numpy as np

    from .compute import real as compute
    from .text import real as real_text

    cfg = real_config_now()
    g0 = compute.grid_table(cfg)
    runs = _Runs(compute.grid_settings(cfg), "slide_grid_run")
    probe = figures.real.placement_grid(g0.rows, g0.tasks, g0.accuracy, g0.trainable, scale=sp.scale)
    m = probe.layout.margin
    min_h = int(m.t + m.b + len(g0.rows) * round(17 * sp.scale) * 1.25)  # each row a little taller than its number
    _intro(sp, text.REAL_GRID.format(budget=g0.trainable[0]),
           runs.height(sp) + min_h + sp.caption_height(text.NO_GRID_SENTENCE) + 2 * sp.rem)
    runs.reserve(sp)
    # the sentence as long as it will be: measured ones where finished, distinct stand-ins elsewhere
    stand_in = 0.5 + 0.01 * np.arange(g0.accuracy.size).reshape(g0.accuracy.shape)
    words = real_text.grid_sentence(g0.rows, g0.tasks, np.where(np.isfinite(g0.accuracy), g0.accuracy, stand_in))
    lay = _figure_and_words(sp, int(probe.layout.height), lambda w: min_h, words, text.NO_GRID_SENTENCE,
                            min_w=_title_room(probe))

    def draw(tag) -> None:
        g = compute.grid_table(cfg)
        labels = [f"{row} · r = {r}" if r else row for row, r in zip(g.rows, g.ranks)]
        _draw_placed(lay, lambda w, h: figures.real.placement_grid(labels, g.tasks, g.accuracy, g.trainable, width=w,
                                                                   height=h, scale=sp.scale),
                     f"slide_grid_{tag}", real_text.grid_sentence(g.rows, g.tasks, g.accuracy),
                     f"{g.finished} of {g.total} runs finished.", text.NO_GRID_SENTENCE)

    runs.draw("Run the grid", draw)


def real_rank(ex: ExploreConfig, sp: SlideSpace) -> None:
    from .compute import real as compute
    from .text import real as real_text

    cfg = real_config_now()
    label = compute.placement_label(cfg.sweep)
    sw0 = compute.sweep_table(cfg)
    runs = _Runs(compute.sweep_settings(cfg), "slide_rank_run")
    # the longest the sentence gets: no rank comes within a point of full fine-tuning, and accuracy falls
    longest = {k: [0.5, 0.9] + [0.2] * (len(sw0.ranks) - 2) for k in sw0.accuracy}
    words = real_text.sweep_sentence(sw0.ranks, longest, {k: 1.0 for k in longest}, label)
    def min_h(width: float) -> int:  # its plot needs 115 px (times the scale) between the title and the legend
        m = figures.real.rank_curve(sw0.ranks, sw0.accuracy, full={k: 1.0 for k in longest}, scale=sp.scale,
                                    width=width).layout.margin
        return int(m.t + m.b + 115 * sp.scale)

    _intro(sp, text.REAL_RANK.format(placement=label, ranks=", ".join(map(str, sw0.ranks))),
           runs.height(sp) + min_h(sp.width) + sp.caption_height(text.NO_SWEEP_SENTENCE) + 2 * sp.rem)
    runs.reserve(sp)
    lay = _figure_and_words(sp, int(440 * sp.scale), min_h, words, text.NO_SWEEP_SENTENCE)

    def draw(tag) -> None:
        sw = compute.sweep_table(cfg)
        _draw_placed(lay, lambda w, h: figures.real.rank_curve(sw.ranks, sw.accuracy, full=sw.full or None, width=w,
                                                               height=h, scale=sp.scale),
                     f"slide_rank_{tag}", real_text.sweep_sentence(sw.ranks, sw.accuracy, sw.full, label),
                     f"{sw.finished} of {sw.total} runs finished.", text.NO_SWEEP_SENTENCE)

    runs.draw("Run the sweep", draw)


DRAW = {"what": what, "equation": equation, "why": why, "matrices": matrices, "compare": compare,
        "forward": forward, "backward": backward, "adamw": adamw, "where": where,
        "real": real, "real_grid": real_grid, "real_rank": real_rank, "matters": matters}
