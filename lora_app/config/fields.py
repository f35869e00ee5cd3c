"""A page's URL and widget values, read from a table of fields by one sanitizer. Plain Python, no streamlit.

Each page states its controls as a tuple of :class:`Field` (name, kind, range or choices, default, what
happens to a value outside, how the notice echoes the value used); :func:`sanitize` reads a raw dict
against it. A missing key takes its default silently; a value that cannot be read keeps the default,
and one outside the range is clamped, snapped, moved to the nearest choice or refused, each with a
notice: ``{key} = `{sent}` {why}; using {key}={value}.``. Messages are templates: ``{lo}``, ``{hi}``,
``{step}`` and ``{choices}`` are filled in with the field's own numbers.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from ..echo import echo_list, quoted

# kinds: what a value is read as
INT, FLOAT, BOOL, CHOICE, NAMES, TEXT = "int", "float", "bool", "choice", "names", "text"
# fits: what happens to a number outside the range (a choice or a name outside its choices is refused)
CLAMP, REFUSE, SNAP, NEAREST, NEAREST_LOG = "clamp", "refuse", "snap", "nearest", "nearest_log"
# names: an unknown name is dropped (KNOWN); KNOWN_OR_DEFAULT keeps the default when no known name is left
KNOWN, KNOWN_OR_DEFAULT = "known", "known_or_default"

BOOL_WORDS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}
UNREADABLE = {INT: "is not a whole number", FLOAT: "is not a finite number", BOOL: "is not 0 or 1",
              CHOICE: "is not one of {choices}"}
MOVED = {SNAP: "is not a multiple of {step} in {lo}…{hi}", NEAREST: "is not one of the choices ({choices})",
         NEAREST_LOG: "is not one of the choices ({choices})"}


class Refused(ValueError):
    """Raised by a field's own reader: the value cannot be read, and the message says why ("is not a number")."""


def folded(text: str) -> str:
    """A choice as the URL may write it: " Seed " reads as "seed"."""
    return text.strip().lower()


def exact(text: str) -> str:
    return text


@dataclass(frozen=True)
class Field:
    """One control: how its raw value is read, what range it must lie in, and what a notice says."""
    name: str                   # the URL parameter, which is also the widget key
    kind: str                   # INT, FLOAT, BOOL, CHOICE, NAMES (a comma list) or TEXT (as sent, if ``read`` passes it)
    default: object
    lo: object = None           # bounds of a number; either may be a function of the values read before it
    hi: object = None
    ends: str = ""              # "" writes the range lo…hi (closed); "(]", "[)", "[]" write it as that interval
    step: float | None = None   # SNAP: the slider's grid
    choices: tuple = ()         # CHOICE and NAMES: the allowed values; NEAREST, NEAREST_LOG: the offered numbers
    fit: str = CLAMP            # a number outside: CLAMP, REFUSE, SNAP, NEAREST or NEAREST_LOG; NAMES: KNOWN_OR_DEFAULT
    normal: Callable[[str], str] = folded  # CHOICE: how the sent text is read before it is looked up
    read: Callable | None = None  # replaces the kind's parser (it may raise Refused with its reason); TEXT: the check
    unreadable: str = ""        # why, when the value cannot be read ("" takes the kind's usual words)
    moved: str = ""             # why, when a number lies outside ("" takes the fit's usual words)
    above: str = ""             # why, when a clamped number lies above hi, if that needs other words
    echo: str = "using {name}={value}"  # how the notice names the value used instead
    echo_moved: str = ""        # the same when the value was moved ("" means echo)


def format_value(v) -> str:
    """A value as the URL and the notices write it: booleans as 1 or 0, floats with %g (2.0 is "2")."""
    if isinstance(v, bool):
        return "1" if v else "0"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def names_param(names) -> str:
    """A list of names as the URL writes it: "q,v", or "none" for no name."""
    return ",".join(names) or "none"


def as_int(raw) -> int:
    """A whole number from a URL's text or a widget's int (3.0 is 3); ValueError for 2.5, inf, True or text."""
    if isinstance(raw, bool):
        raise ValueError
    if isinstance(raw, int):
        return int(raw)
    if isinstance(raw, float):
        if not math.isfinite(raw) or int(raw) != raw:
            raise ValueError
        return int(raw)
    return int(str(raw).strip())


def as_float(raw) -> float:
    """A finite float from a URL's text or a widget's number; ValueError (or TypeError) for anything else."""
    value = float(str(raw).strip()) if isinstance(raw, str) else float(raw)
    if not math.isfinite(value):
        raise ValueError
    return value


def snap(value: float, lo: float, hi: float, step: float) -> float:
    """The grid point of a slider (lo…hi in steps of step) nearest to value."""
    return round(round((min(max(value, lo), hi) - lo) / step) * step + lo, 10)


def nearest(value, choices):
    """The offered number closest to value (the smaller one on a tie)."""
    return min(choices, key=lambda c: (abs(c - value), c))


def nearest_log(value: float, choices):
    """The offered number closest to value on a log scale (the smaller one on a tie); value must be > 0."""
    return min(choices, key=lambda c: (abs(math.log(c) - math.log(value)), c))


def names_of(raw) -> list[str]:
    """A comma list as sent: "FFN, o" is ["ffn", "o"], "none" is []."""
    names = [t.strip().lower() for t in str(raw).split(",") if t.strip()]
    return [] if names == ["none"] else names


def bounds(field: Field, values: Mapping) -> tuple:
    return tuple(b(values) if callable(b) else b for b in (field.lo, field.hi))


def inside(field: Field, value, lo, hi) -> bool:
    ends = field.ends or "[]"
    above_lo = value > lo if ends[0] == "(" else value >= lo
    below_hi = value < hi if ends[1] == ")" else value <= hi
    return above_lo and below_hi


def _why(template: str, field: Field, lo=None, hi=None) -> str:
    if "{" not in template:
        return template
    return template.format(lo=format_value(lo), hi=format_value(hi), step=format_value(field.step),
                           choices=", ".join(format_value(c) for c in field.choices))


def _unreadable(field: Field) -> str:
    return _why(field.unreadable or UNREADABLE.get(field.kind, ""), field)


def _outside(field: Field, value, lo, hi) -> str:
    if field.above and value > hi:
        return _why(field.above, field, lo, hi)
    if field.moved:
        return _why(field.moved, field, lo, hi)
    if field.fit in MOVED:
        return _why(MOVED[field.fit], field, lo, hi)
    if field.ends:
        return f"is outside {field.ends[0]}{format_value(lo)}, {format_value(hi)}{field.ends[1]}"
    return _why("is outside {lo}…{hi}", field, lo, hi)


KEPT = object()  # check's value when the sent one is refused: the field keeps the value it has


def check(field: Field, raw, values: Mapping) -> tuple[object, str | None, bool]:
    """One raw value against its field: (the value to use, why it is not the one sent or None, moved?).

    The value is KEPT when the sent one is refused; ``values`` holds the values read before this
    field (for bounds that depend on them).
    """
    if field.kind == TEXT:
        try:
            field.read(raw)
        except ValueError as e:  # the reader's message names the value itself
            return KEPT, str(e), False
        return str(raw), None, False
    if field.kind == NAMES:
        names = names_of(raw)
        unknown = [t for t in names if t not in field.choices]
        known = [t for t in field.choices if t in names]
        if not unknown:
            return known, None, False
        why = f"{echo_list(unknown)} {_unreadable(field)}"
        return (KEPT, why, False) if field.fit == KNOWN_OR_DEFAULT and not known else (known, why, True)
    if field.kind == BOOL:
        word = str(raw).strip().lower()
        return (BOOL_WORDS[word], None, False) if word in BOOL_WORDS else (KEPT, _unreadable(field), False)
    if field.kind == CHOICE:
        value = field.normal(str(raw))
        return (value, None, False) if value in field.choices else (KEPT, _unreadable(field), False)
    try:
        value = (field.read or (as_int if field.kind == INT else as_float))(raw)
        if field.fit == NEAREST_LOG and value <= 0:
            raise ValueError  # no log scale reaches it
    except Refused as e:
        return KEPT, str(e), False
    except (TypeError, ValueError, OverflowError):
        return KEPT, _unreadable(field), False
    return _fit(field, value, values)


def _fit(field: Field, value, values: Mapping) -> tuple[object, str | None, bool]:
    lo, hi = bounds(field, values)
    if field.fit == REFUSE:
        return (value, None, False) if inside(field, value, lo, hi) else (KEPT, _outside(field, value, lo, hi), False)
    if field.fit == SNAP:
        fitted = snap(value, lo, hi, field.step)
    elif field.fit == NEAREST:
        fitted = nearest(value, field.choices)
    elif field.fit == NEAREST_LOG:
        fitted = nearest_log(value, field.choices)
    else:
        fitted = min(max(value, lo), hi)
    if fitted == value:
        return fitted, None, False
    return fitted, _outside(field, value, lo, hi), True


def notice(field: Field, raw, why: str, value, moved: bool) -> str:
    """The sentence that says what was sent, why it is not used, and what is used instead."""
    shown = names_param(value) if field.kind == NAMES else format_value(value)
    echo = ((moved and field.echo_moved) or field.echo).format(name=field.name, value=shown)
    if field.kind == TEXT:
        return f"{why}; {echo}."
    return f"{quoted(field.name, raw)}{':' if field.kind == NAMES else ''} {why}; {echo}."


def defaults(fields) -> dict:
    return {f.name: list(f.default) if f.kind == NAMES else f.default for f in fields}


def sanitize(raw: Mapping, fields) -> tuple[dict, list[str]]:
    """Raw values (from the URL or from widgets) read against a table of fields: (values, notices).

    Fields are read in the table's order, so a bound may depend on a field above it. Last, every
    bounded number is held to its bounds silently: a default can lie outside a bound that a field
    above it set (the default rank 2 when d is 1).
    """
    out, notices = defaults(fields), []
    for field in fields:
        if field.name not in raw:
            continue
        value, why, moved = check(field, raw[field.name], out)
        if value is not KEPT:
            out[field.name] = value
        if why is not None:
            notices.append(notice(field, raw[field.name], why, out[field.name], moved))
    for field in fields:
        if field.kind in (INT, FLOAT) and field.lo is not None and field.hi is not None:
            lo, hi = bounds(field, out)
            out[field.name] = min(max(out[field.name], lo), hi)
    return out, notices


def recheck(current: Mapping, good: Mapping, fields) -> tuple[dict, list[str]]:
    """A session's values checked again on a later run, where the URL's were checked on the first.

    A value can go bad after it was taken: a bound that depends on the example moved under it (r* above a
    smaller min(d, k)). A refused value gives way to the last good one (``good``), or to the default where that
    is out of bounds too; a moved one to where it moves; each with the notice :func:`sanitize` gives.
    """
    def sent(field, raw):  # a NAMES field's value is a list in the session, a comma list in the URL
        return names_param(raw) if field.kind == NAMES and isinstance(raw, (list, tuple)) else raw

    out, notices = {}, []
    for field in fields:
        if field.name not in current:
            continue
        value, why, moved = check(field, sent(field, current[field.name]), out)
        if value is KEPT:
            again = check(field, sent(field, good.get(field.name, field.default)), out)[0]
            value = field.default if again is KEPT else again
        if why is not None:
            notices.append(notice(field, current[field.name], why, value, moved))
        out[field.name] = value
    return out, notices
