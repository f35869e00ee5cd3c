"""The real transformer's slides: a LoRA run against full fine-tuning, the placement grid and the rank sweep, trained live."""
from __future__ import annotations

from typing import NamedTuple

import streamlit as st

from .. import figures
from ..config import ExploreConfig
from ..config.real import real_config
from ..text import present as text
from ..widgets import charts
from ..widgets.real_settings import widget_values
from .layout import SlideSpace

BAR_REM = 1.0      # the progress bar under its status line (the line is measured as a caption)

STATUS = "x" * 78  # as long as follow_run.follow's status line ("Training: run 3 of 20, Q+V · r = 4 on …")

BUTTON_REM = 9.5   # the width of a button with its icon and the gap after it

STOPPED = "x" * 150  # as long as follow_run's stopped note

SLIDE_HELP = "Runs on this server's worker; finished runs are kept, so a second press anywhere is instant."



def real_config_now():
    """The Real model page's current settings: the session's ``real_*`` widgets where set, else the page's defaults."""
    return real_config(widget_values(), st.session_state.get("_real_last_good"))[0]



def _title_room(fig) -> float:
    """The width a figure needs for its title and subtitle (they start 2 % in from its left edge)."""
    from ..figures.sizes import text_width

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



def _flow_height(sp: SlideSpace, flow) -> float:
    """The height of what a train flow puts above the figures: the row, the progress bar, a stopped run's note."""
    if not flow.missing:
        return 0.0
    h = max(2.5 * sp.rem, _height_at(sp, text.train_prompt(flow.missing), sp.width - 2 * BUTTON_REM * sp.rem)) + sp.rem
    if flow.running:
        h += sp.caption_height(STATUS) + BAR_REM * sp.rem + sp.rem
    if flow.held is not None:
        h += sp.text_height(STOPPED) + 2 * sp.rem + sp.rem  # the warning's padding
    return h



def _reserve(sp: SlideSpace, flow) -> None:
    if flow.missing:
        sp.take(_flow_height(sp, flow) - sp.rem)



def _train(flow, label: str, draw) -> None:
    """The slide's train flow (the row above its figures, as on the Real model page), then ``draw(snapshot, tag)``."""
    from ..widgets.follow_run import train_flow

    if train_flow(flow, label, draw, help=SLIDE_HELP, prompt=text.train_prompt(flow.missing)) is not None:
        draw(None, "final")



def real(ex: ExploreConfig, sp: SlideSpace) -> None:
    from lora_core.finetune import TARGET_LABELS
    from lora_core.tiny import TASKS

    from ..compute import real as compute
    from ..widgets.follow_run import train_state

    cfg = real_config_now()
    s = cfg.settings
    pair = compute.pair_settings(s)
    what = TASKS[s.task].split(" (")[0]
    if s.full:
        intro = text.REAL_FULL.format(task=s.task, what=what)
    else:
        layers = "all layers" if not s.layers else f"layer {s.layers[0] + 1}"
        placement = " and ".join(TARGET_LABELS[t] for t in s.targets)
        intro = text.REAL.format(task=s.task, what=what, placement=f"{placement} ({layers}), r = {s.r}")
    flow = train_state(pair, "slide_real_train")
    numbers = ""
    if not flow.missing:
        lora_run, full_run = (None, flow.runs[0]) if s.full else flow.runs
        numbers = text.real_sentence(
            s.steps, None if lora_run is None else (lora_run.accuracy, lora_run.trainable, lora_run.total),
            (full_run.accuracy, full_run.trainable))
    _intro(sp, intro, (sp.text_height(numbers) + sp.rem if numbers else _flow_height(sp, flow))
           + _curves_min_h(sp, sp.width) + sp.caption_height(text.NO_SEQUENCE) + 2 * sp.rem)
    if numbers:
        sp.markdown(numbers)
    _reserve(sp, flow)
    lay = _pair_layout(sp, cfg)

    def draw(snap, tag) -> None:  # the first run as it trains, full fine-tuning's beside it once stored
        first, second = compute.pair_so_far(pair, None if snap is None else snap.live)
        _draw_pair(sp, lay, cfg, first, second, compute.run(pair[0]), tag)

    _train(flow, "Train now", draw)



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
    from ..views import real as views

    return views.sequence_figure(cfg, run, scale=sp.scale, width=width, height=height)



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
    from ..figures.sizes import text_width
    cell = text_width("9 ✗", round(19 * sp.scale)) * 1.1 + 6  # a digit and its mark, with the cells' gap
    seq_min_w = max(probe.layout.margin.l + 8 * cell + 12, _title_room(probe))
    curves_min_w = 360 * sp.scale

    curves_min_h = lambda width: _curves_min_h(sp, width)
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
    from ..views import real as views

    s = cfg.settings
    parts = []
    if lay.curves is not None:
        w, h = lay.curves
        names = ("full fine-tuning", "full fine-tuning") if s.full else ("LoRA", "full fine-tuning")
        parts.append((views.curves_figure(first, second, s.steps, names=names, width=w, height=h, scale=sp.scale),
                      f"slide_real_curves_{tag}"))
    if lay.sequence is not None:
        w, h = lay.sequence
        parts.append((_sequence_figure(cfg, adapted_run, sp, w, h), f"slide_real_seq_{tag}"))
    box = st.container(horizontal=True, gap="small") if lay.side else st.container()
    for fig, key in parts:
        charts.chart(box, fig, key=key, width="content")
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
    charts.chart(left, build(*lay.fig), key=key, width="content")
    if lay.words is None:
        st.caption(no_words)
    elif words:
        right.markdown(words)
    else:
        right.caption(progress)



def real_grid(ex: ExploreConfig, sp: SlideSpace) -> None:
    import numpy as np

    from ..compute import real as compute
    from ..text import real as real_text
    from ..widgets.follow_run import train_state

    cfg = real_config_now()
    g0 = compute.grid_table(cfg)
    flow = train_state(compute.grid_settings(cfg), "slide_grid_run")
    probe = figures.real.placement_grid(g0.rows, g0.tasks, g0.accuracy, g0.trainable, scale=sp.scale)
    m = probe.layout.margin
    min_h = int(m.t + m.b + len(g0.rows) * round(17 * sp.scale) * 1.25)  # each row a little taller than its number
    _intro(sp, text.REAL_GRID.format(budget=g0.trainable[0]),
           _flow_height(sp, flow) + min_h + sp.caption_height(text.NO_GRID_SENTENCE) + 2 * sp.rem)
    _reserve(sp, flow)
    # the sentence as long as it will be: measured ones where finished, distinct stand-ins elsewhere
    stand_in = 0.5 + 0.01 * np.arange(g0.accuracy.size).reshape(g0.accuracy.shape)
    words = real_text.grid_sentence(g0.rows, g0.tasks, np.where(np.isfinite(g0.accuracy), g0.accuracy, stand_in))
    lay = _figure_and_words(sp, int(probe.layout.height), lambda w: min_h, words, text.NO_GRID_SENTENCE,
                            min_w=_title_room(probe))

    def draw(snap, tag) -> None:
        g = compute.grid_table(cfg)
        _draw_placed(lay, lambda w, h: figures.real.placement_grid(g.labels, g.tasks, g.accuracy, g.trainable, width=w,
                                                                   height=h, scale=sp.scale),
                     f"slide_grid_{tag}", real_text.grid_sentence(g.rows, g.tasks, g.accuracy),
                     f"{g.finished} of {g.total} runs finished.", text.NO_GRID_SENTENCE)

    _train(flow, "Run the grid", draw)



def real_rank(ex: ExploreConfig, sp: SlideSpace) -> None:
    from ..compute import real as compute
    from ..text import real as real_text
    from ..widgets.follow_run import train_state

    cfg = real_config_now()
    label = compute.placement_label(cfg.sweep)
    sw0 = compute.sweep_table(cfg)
    flow = train_state(compute.sweep_settings(cfg), "slide_rank_run")
    # the longest the sentence gets: no rank comes within a point of full fine-tuning, and accuracy falls
    longest = {k: [0.5, 0.9] + [0.2] * (len(sw0.ranks) - 2) for k in sw0.accuracy}
    words = real_text.sweep_sentence(sw0.ranks, longest, {k: 1.0 for k in longest}, label)
    def min_h(width: float) -> int:  # its plot needs 115 px (times the scale) between the title and the legend
        m = figures.real.rank_curve(sw0.ranks, sw0.accuracy, full={k: 1.0 for k in longest}, scale=sp.scale,
                                    width=width).layout.margin
        return int(m.t + m.b + 115 * sp.scale)

    _intro(sp, text.REAL_RANK.format(placement=label, ranks=", ".join(map(str, sw0.ranks))),
           _flow_height(sp, flow) + min_h(sp.width) + sp.caption_height(text.NO_SWEEP_SENTENCE) + 2 * sp.rem)
    _reserve(sp, flow)
    lay = _figure_and_words(sp, int(440 * sp.scale), min_h, words, text.NO_SWEEP_SENTENCE)

    def draw(snap, tag) -> None:
        sw = compute.sweep_table(cfg)
        _draw_placed(lay, lambda w, h: figures.real.rank_curve(sw.ranks, sw.accuracy, full=sw.full or None, width=w,
                                                               height=h, scale=sp.scale),
                     f"slide_rank_{tag}", real_text.sweep_sentence(sw.ranks, sw.accuracy, sw.full, label),
                     f"{sw.finished} of {sw.total} runs finished.", text.NO_SWEEP_SENTENCE)

    _train(flow, "Run the sweep", draw)


def real_phi(ex: ExploreConfig, sp: SlideSpace) -> None:
    """The subspace similarity of the Real model page's two example runs (one per task), for one module."""
    import numpy as np

    from ..compute import adapters as ad
    from ..text import adapters as ad_text
    from ..widgets.follow_run import train_state

    settings = ad.example_settings()
    flow = train_state(settings, "slide_phi_run")
    module = "layers.0.v_proj"
    words = ad_text.compare_sentence(4, 0.55, ("layers.1.q_proj", 0.55), ("layers.0.q_proj", 0.45), -0.55)
    def min_h(width: float) -> int:  # four rows of cells at least 30 px (times the scale) under the title
        return int(148 * sp.scale + 4 * 30 * sp.scale)

    _intro(sp, text.REAL_PHI.format(module=module),
           _flow_height(sp, flow) + min_h(sp.width) + sp.caption_height(text.NO_PHI_SENTENCE) + 2 * sp.rem)
    _reserve(sp, flow)
    probe = figures.adapters.similarity_grid(np.full((4, 4), np.nan), title=f"φ of {module}: reverse against permute",
                                             first="reverse", second="permute", scale=sp.scale)
    lay = _figure_and_words(sp, int(440 * sp.scale), min_h, words, text.NO_PHI_SENTENCE, min_w=_title_room(probe))

    def draw(snap, tag) -> None:
        first, second = (ad.open_adapter(f"run:{s.key()}", {}) for s in settings)
        if first.adapter is None or second.adapter is None:  # drawn pending, as the other experiments' slides are
            pending = f"{sum(o.adapter is None for o in (first, second))} of 2 runs still to train."
            _draw_placed(lay, lambda w, h: figures.adapters.similarity_grid(
                np.full((4, 4), np.nan), title=f"φ of {module}: reverse against permute", first="reverse",
                second="permute", width=w, height=h, scale=sp.scale), f"slide_phi_{tag}", "", pending,
                text.NO_PHI_SENTENCE)
            return
        comps = ad.comparison((first.key, second.key), first.adapter, second.adapter)
        c = next(c for c in comps if c.name == module)
        at = [float(x.phi[min(x.r1, x.r2) - 1, min(x.r1, x.r2) - 1]) for x in comps]
        best, worst = max(range(len(at)), key=at.__getitem__), min(range(len(at)), key=at.__getitem__)
        sentence = ad_text.compare_sentence(len(comps), sum(at) / len(at), (comps[best].name, at[best]),
                                            (comps[worst].name, at[worst]), sum(x.cosine for x in comps) / len(comps))
        _draw_placed(lay, lambda w, h: figures.adapters.similarity_grid(
            c.phi.numpy(), title=f"φ of {module}: reverse against permute", first="reverse", second="permute",
            width=w, height=h, scale=sp.scale), f"slide_phi_{tag}", sentence, "", text.NO_PHI_SENTENCE)

    _train(flow, "Train the two runs", draw)
