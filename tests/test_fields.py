"""The one sanitizer of URL and widget values (lora_app.config.fields), on every page's table and on made-up ones.

Properties: any dict of text gives values inside the table's bounds and never raises; a valid value,
written as the URL writes it, reads back unchanged and silently.
"""
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lora_app.config import attention, explore, family, fields, present, rank, real, scale, training
from lora_app.config.fields import Field, Refused, sanitize

TABLES = {
    "explore": explore.FIELDS, "training r_max=1": training.training_fields(1),
    "training r_max=3": training.training_fields(3), "attention": attention.FIELDS, "rank": rank.FIELDS,
    "present": present.FIELDS, "scale": scale.FIELDS, "bench": scale.BENCH_FIELDS, "real": real.real_fields(8),
    "family r_max=1": family.family_fields(1), "family r_max=3": family.family_fields(3),
}

NUMBER_TEXT = st.one_of(st.integers(-10**6, 10**6).map(str), st.integers().map(str),
                        st.floats(allow_nan=True, allow_infinity=True).map(repr),
                        st.sampled_from(["1e400", "-0", "2.5", " 3 ", "1_000", "0x10", "٣", "1e-9", "3.0"]))
SENT = st.one_of(st.text(max_size=12), NUMBER_TEXT, st.sampled_from(["none", "q,v", "zz,q", "true", "no", "L", "xl"]),
                 st.text(alphabet="0123456789 ,", max_size=20))


def within(field: Field, value, values: dict) -> bool:
    """The value obeys its field: its type, its choices, its bounds (or its grid) and, for text, its check."""
    if field.kind == fields.BOOL:
        return type(value) is bool
    if field.kind == fields.CHOICE:
        return value in field.choices
    if field.kind == fields.NAMES:
        return list(value) == [c for c in field.choices if c in value]
    if field.kind == fields.TEXT:
        field.read(value)
        return isinstance(value, str)
    if field.kind == fields.INT and type(value) is not int:
        return False
    if field.fit in (fields.NEAREST, fields.NEAREST_LOG):
        return value in field.choices
    lo, hi = fields.bounds(field, values)
    if field.fit == fields.SNAP and fields.snap(value, lo, hi, field.step) != value:
        return False
    return math.isfinite(value) and fields.inside(field, value, lo, hi)


def table_raw(table) -> st.SearchStrategy:
    names = [f.name for f in table]
    return st.dictionaries(st.sampled_from([*names, "junk", "view"]), SENT, max_size=len(names) + 1)


@pytest.mark.parametrize("name", TABLES)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_any_text_gives_values_inside_the_tables_bounds_and_never_raises(name, data):
    table = TABLES[name]
    raw = data.draw(table_raw(table))
    values, notices = sanitize(raw, table)
    assert set(values) == {f.name for f in table}
    for field in table:
        assert within(field, values[field.name], values), (field.name, values[field.name])
    assert all(isinstance(n, str) and "\n" not in n and len(n) < 400 for n in notices)
    assert len(notices) <= len(raw)  # one notice at most for each key sent, none for a key the table lacks


def valid(field: Field, values: dict) -> st.SearchStrategy:
    """A value the field takes as it is."""
    if field.kind == fields.BOOL:
        return st.booleans()
    if field.kind == fields.CHOICE:
        return st.sampled_from(field.choices)
    if field.kind == fields.NAMES:
        return st.sets(st.sampled_from(field.choices)).map(lambda s: [c for c in field.choices if c in s])
    if field.kind == fields.TEXT:
        return st.lists(st.sampled_from("0123456789"), min_size=8, max_size=8).map(" ".join)
    if field.fit in (fields.NEAREST, fields.NEAREST_LOG):
        return st.sampled_from(field.choices)
    lo, hi = fields.bounds(field, values)
    if field.fit == fields.SNAP:
        return st.integers(0, round((hi - lo) / field.step)).map(lambda i: fields.snap(lo + i * field.step, lo, hi, field.step))
    if field.kind == fields.INT:
        return st.integers(lo, hi)
    ends = field.ends or "[]"
    return st.floats(lo, hi, exclude_min=ends[0] == "(", exclude_max=ends[1] == ")")


def url_text(field: Field, value) -> str:
    """The value as a URL writes it (a float in full, so that it reads back as exactly this float)."""
    if field.kind == fields.NAMES:
        return fields.names_param(value)
    return repr(value) if isinstance(value, float) else fields.format_value(value)


@pytest.mark.parametrize("name", TABLES)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_valid_values_pass_unchanged_and_silently(name, data):
    table = TABLES[name]
    values = fields.defaults(table)
    for field in table:  # in the table's order: a bound may depend on the values above it
        values[field.name] = data.draw(valid(field, values), label=field.name)
    sent = {f.name: url_text(f, values[f.name]) for f in table}
    assert sanitize(sent, table) == (values, [])


# --- made-up tables: every kind of number field, with bounds hypothesis picks ----------------------------

@st.composite
def number_fields(draw) -> Field:
    kind = draw(st.sampled_from([fields.INT, fields.FLOAT]))
    fit = draw(st.sampled_from([fields.CLAMP, fields.REFUSE, fields.SNAP, fields.NEAREST]))
    if kind == fields.INT:
        lo = draw(st.integers(-1000, 1000))
        hi = draw(st.integers(lo, lo + 10**6))
    else:
        lo = draw(st.floats(-1e6, 1e6))
        hi = draw(st.floats(lo, lo + 1e6))
    step = draw(st.sampled_from([0.25, 0.5, 1.0])) if fit == fields.SNAP else None
    if fit == fields.SNAP:  # a slider's grid starts on a point it can write (snap rounds to 10 decimals)
        kind, lo = fields.FLOAT, step * draw(st.integers(-1000, 1000))
        hi = lo + step * draw(st.integers(0, 100))
    choices = tuple(sorted(set(draw(st.lists(st.integers(lo, hi) if kind == fields.INT else st.floats(lo, hi),
                                             min_size=1, max_size=6))))) if fit == fields.NEAREST else ()
    default = choices[0] if choices else lo
    ends = draw(st.sampled_from(["", "[]"])) if fit == fields.REFUSE else ""
    return Field("x", kind, default, lo=lo, hi=hi, step=step, choices=choices, fit=fit, ends=ends)


@settings(max_examples=300, deadline=None)
@given(number_fields(), st.one_of(NUMBER_TEXT, st.text(max_size=8)))
def test_a_made_up_number_field_holds_any_text_to_its_bounds(field, text):
    values, notices = sanitize({"x": text}, (field,))
    assert within(field, values["x"], values)
    assert len(notices) <= 1


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_a_made_up_number_field_takes_a_valid_value_unchanged(data):
    field = data.draw(number_fields())
    value = data.draw(valid(field, {}))
    assert sanitize({"x": url_text(field, value)}, (field,)) == ({"x": value}, [])


# --- the parts, each with its words ------------------------------------------------------------------

@pytest.mark.parametrize("raw,want", [("3", 3), (" -7 ", -7), (3, 3), (3.0, 3), (10**400, 10**400)])
def test_as_int_reads_whole_numbers(raw, want):
    assert fields.as_int(raw) == want and type(fields.as_int(raw)) is int


@pytest.mark.parametrize("raw", ["2.5", "1e3", "abc", "", 2.5, math.inf, math.nan, True, None, [1]])
def test_as_int_refuses_what_is_not_a_whole_number(raw):
    with pytest.raises((TypeError, ValueError)):
        fields.as_int(raw)


@pytest.mark.parametrize("raw", ["inf", "nan", "1e400", math.inf, "abc", None])
def test_as_float_refuses_what_is_not_finite(raw):
    with pytest.raises((TypeError, ValueError)):
        fields.as_float(raw)


def test_format_value_writes_what_the_url_holds():
    shown = [fields.format_value(v) for v in (True, False, 2.0, 0.5, 1e-8, 7, "q+v")]
    assert shown == ["1", "0", "2", "0.5", "1e-08", "7", "q+v"]


def test_a_notice_names_what_was_sent_why_and_what_is_used():
    table = (Field("r", fields.INT, 2, lo=1, hi=3),)
    assert sanitize({"r": "9"}, table) == ({"r": 3}, ["r = `9` is outside 1…3; using r=3."])
    assert sanitize({"r": "two"}, table) == ({"r": 2}, ["r = `two` is not a whole number; using r=2."])
    refuse = (Field("lr", fields.FLOAT, 0.02, lo=0, hi=10, ends="(]", fit=fields.REFUSE),)
    assert sanitize({"lr": "0"}, refuse) == ({"lr": 0.02}, ["lr = `0` is outside (0, 10]; using lr=0.02."])
    names = (Field("t", fields.NAMES, ("q",), choices=("q", "v"), fit=fields.KNOWN, unreadable="is not a target"),)
    assert sanitize({"t": "v,zz"}, names) == ({"t": ["v"]}, ["t = `v,zz`: `zz` is not a target; using t=v."])


def test_a_bound_may_depend_on_a_field_above_and_holds_the_default_too():
    table = (Field("d", fields.INT, 5, lo=1, hi=9), Field("r", fields.INT, 2, lo=1, hi=lambda v: v["d"]))
    assert sanitize({"d": "1"}, table) == ({"d": 1, "r": 1}, [])
    assert sanitize({"d": "3", "r": "4"}, table)[1] == ["r = `4` is outside 1…3; using r=3."]


def test_a_fields_own_reader_gives_its_own_reason():
    def read(raw):
        raise Refused("is not a number")

    values, why, _ = fields.check(Field("x", fields.INT, 1, lo=1, hi=2, read=read), "2", {})
    assert why == "is not a number"


@pytest.mark.parametrize("name", TABLES)
@settings(max_examples=100, deadline=None)
@given(data=st.data())
def test_a_later_recheck_keeps_good_values_and_puts_a_bad_one_back_to_the_last_good(name, data):
    """fields.recheck, a page's check of its session values on every later run: what sanitize accepts passes
    unchanged and silently; a value it refuses gives way to the last good value, or to the default when that no
    longer fits either; whatever comes out obeys the table."""
    table = TABLES[name]
    good, _ = sanitize(data.draw(table_raw(table)), table)
    again, notes = fields.recheck(good, {}, table)
    assert again == good and notes == []
    sent = data.draw(table_raw(table))
    out, notes = fields.recheck({**good, **sent}, good, table)
    for field in table:
        assert within(field, out[field.name], out), (field.name, out[field.name])
        raw = {**good, **sent}[field.name]
        if field.kind == fields.NAMES and isinstance(raw, list):
            raw = fields.names_param(raw)
        value, why, moved = fields.check(field, raw, out)
        if value is fields.KEPT:  # refused: the last good value, held to today's bounds
            kept = fields.check(field, fields.names_param(good[field.name]) if field.kind == fields.NAMES
                                else good[field.name], out)[0]
            assert out[field.name] in (kept, field.default)
            assert fields.notice(field, sent[field.name], why, out[field.name], moved) in notes
