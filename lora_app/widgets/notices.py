"""What was clamped, dropped or refused: said in one place, and kept on screen until the user acts.

Any code says something with :func:`add`, at any point of a run. Each page calls :func:`show` at its
top, where its notices are drawn; those added later in the run join them when the run ends
(:func:`close`, from ``screen.report``). The matrix tables' refusals are drawn above the tables
(:func:`draw`).

A notice stays through every rerun that is not the user acting: the browser's report of its size, a
key log sent again, a fresh table registering, a reconnect, a play tick. The user acts when a value
they can change differs from what the last run left it at (a widget, a tab, a table), when a key press
arrives, or when another page opens. Then the notices already on screen go, and what this run says is
shown in their place.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import streamlit as st

from ..echo import echo
from . import screen

TOP = "top"      # at the top of the page (show)
EDITS = "edits"  # above the matrix tables (matrix_editor)
ICONS = {"warning": ":material/warning:", "info": ":material/info:", "error": ":material/block:"}

_KEPT = "_notices"        # {Notice: whether a run has drawn it}, in the order they were said
_SEEN = "_notices_seen"   # what the user can change, as the last run left it (a Seen)
_OPEN = "_notices_open"   # this run's place at the top of the page, from show() until close()


class Notice(NamedTuple):
    text: str
    kind: str    # "warning", "info" or "error"
    icon: str
    place: str   # TOP or EDITS


class Seen(NamedTuple):
    page: str | None
    values: dict           # session state as the user can change it: widgets, tabs, tables, settings
    keys: tuple | None     # the browser's own count of key presses (screen.key_count)
    rose: frozenset        # the keys that turned True in that run: a button's trigger, False again by itself


def add(text: str, kind: str = "warning", icon: str | None = None, place: str = TOP) -> None:
    """Say ``text`` until the user next acts (the same words said twice are one notice)."""
    kept = st.session_state.setdefault(_KEPT, {})
    kept[Notice(text, kind, icon or ICONS[kind], place)] = False  # said in this run: it outlives this run's act


def say_refused(names) -> None:
    """The controls whose message the server's widget guard refused (app.py hands their names over): say so."""
    for name in names:
        add(f"The control {echo(name, 40)} sent a value this page cannot read; it was ignored, and the control "
            "keeps its last value.")


def show(page: str | None = None) -> None:
    """At the top of a page: decide whether the user acted, then draw the notices that stand.

    ``page`` names the page (opening another page is the user acting); without it, the URL's path does.
    """
    ss = st.session_state
    kept = ss.setdefault(_KEPT, {})
    page = page or _path()
    seen, now = ss.get(_SEEN), _snapshot(page)
    if user_acted(seen, now):
        for notice in [n for n, drawn in kept.items() if drawn]:
            del kept[notice]
    ss[_SEEN] = now._replace(rose=_rose(seen, now))
    slot = st.empty()  # one element, filled again at close() if the run says more: it takes no room when empty
    top = _draw(slot, [n for n in kept if n.place == TOP])
    ss[_OPEN] = (slot, top, page)


def close() -> None:
    """At the end of a run (screen.report): the notices said after the top of the page was drawn join it."""
    ss = st.session_state
    opened = ss.pop(_OPEN, None)
    if opened is None:  # this run drew no page top (it stopped before show)
        return
    slot, drawn, page = opened
    kept = ss.get(_KEPT, {})
    top = [n for n in kept if n.place == TOP]
    if top != drawn:
        _draw(slot, top)
    for notice in top:  # on screen now (one said again after the top was drawn is there already)
        kept[notice] = True
    seen = ss.get(_SEEN)
    ss[_SEEN] = _snapshot(page)._replace(rose=seen.rose if seen else frozenset())  # the run's own changes are not the user's


def draw(place: str) -> None:
    """Draw the notices of ``place`` here (the matrix tables draw theirs above the tables).

    They are drawn in one slot that is there with or without them: what follows keeps its place in the
    page, so the browser keeps its state (the matrix tables' open tab stayed X after a refused cell).
    """
    _draw(st.empty(), [n for n in st.session_state.get(_KEPT, {}) if n.place == place])


def user_acted(seen: Seen | None, now: Seen) -> bool:
    """Whether the user acted between two snapshots: another page, a key press, or a value they changed.

    A value that appears or goes is no act (a widget drawn for the first time, a table replaced);
    nor is a button's trigger falling back to False, nor a count of presses under a new id (a page
    announcing where its count starts), nor the same count sent again.
    """
    if seen is None:
        return False  # the session's first run
    if seen.page != now.page:
        return True
    if seen.keys and now.keys and seen.keys[0] == now.keys[0] and seen.keys[1] != now.keys[1]:
        return True
    for key, value in now.values.items():
        if key not in seen.values or _same(seen.values[key], value):
            continue
        if seen.values[key] is True and value is False and key in seen.rose:
            continue
        return True
    return False


def _snapshot(page: str | None) -> Seen:
    try:
        state = st.session_state.to_dict()
    except KeyError:  # a widget's value arrived before its metadata (a restarted server): nothing to compare
        state = {}
    values = {k: v for k, v in state.items() if not k.startswith("_") and k != "screen"}
    return Seen(page, values, screen.key_count(), frozenset())


def _rose(seen: Seen | None, now: Seen) -> frozenset:
    before = seen.values if seen else {}
    return frozenset(k for k, v in now.values.items() if v is True and before.get(k) is not True)


def _same(a, b) -> bool:
    if a is b:
        return True
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    try:
        return bool(a == b)
    except (TypeError, ValueError):  # arrays compare element by element: a new one counts as a change
        return False


def _path() -> str | None:
    url = st.context.url
    return url.split("://", 1)[-1].partition("/")[2] if url else None


def _draw(slot, notices: list[Notice]) -> list[Notice]:
    kept = st.session_state.get(_KEPT, {})
    if notices:
        box = slot.container()
        for notice in notices:
            _alert(box, notice)
            kept[notice] = True
    else:
        slot.empty()
    return notices


def _alert(where, notice: Notice) -> None:
    getattr(where, notice.kind)(notice.text, icon=notice.icon)
