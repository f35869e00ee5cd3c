"""Forged widget messages: whatever a browser sends for any widget, the page keeps its last good state.

Widget limits exist only in the browser. These tests send, through AppTest, the protobuf messages a
tampered browser could send: a value of the wrong kind, a value of the right kind that is out of
range or not finite, text that is not JSON where JSON belongs, and table edits naming rows and
columns that do not exist. Each must end in a notice and the last good state, never a traceback
and never a silent write.
"""
import math

import numpy as np
import pytest
from streamlit.proto.WidgetStates_pb2 import WidgetStates

from helpers import figures, heatmap_z, open_expander
from lora_core import seed_example

PAGES = ("explore", "training", "attention", "rank", "scale", "present")  # real: its own test, per tab

# name → (the value kind it sends, how to fill a WidgetState): every kind a widget can send, hostile contents
FORGERIES = {
    "text that is not JSON": ("string_value", lambda w: setattr(w, "string_value", "not json {")),
    "10,000 characters": ("string_value", lambda w: setattr(w, "string_value", "x" * 10_000)),
    "broken JSON": ("json_value", lambda w: setattr(w, "json_value", "{not json")),
    "JSON of the wrong shape": ("json_value", lambda w: setattr(w, "json_value", "[[1], {}, null]")),
    "a huge integer": ("int_value", lambda w: setattr(w, "int_value", 10**15)),
    "a negative integer": ("int_value", lambda w: setattr(w, "int_value", -5)),
    "infinity": ("double_value", lambda w: setattr(w, "double_value", math.inf)),
    "NaN": ("double_value", lambda w: setattr(w, "double_value", math.nan)),
    "numbers out of range": ("double_array_value", lambda w: w.double_array_value.data.extend([math.inf, -1e308, 3])),
    "unknown options": ("string_array_value", lambda w: w.string_array_value.data.extend(["zzz", "<b>x</b>"])),
    "indices out of range": ("int_array_value", lambda w: w.int_array_value.data.extend([99, -1])),
    "a boolean": ("bool_value", lambda w: setattr(w, "bool_value", True)),
    # (no trigger: for a button that is a real press, and Play would then animate all 300 steps)
}


def forgeries_for(kind: str | None) -> dict:
    """Every forgery of the widget's own value kind, and two of other kinds."""
    own = {name: fill for name, (k, fill) in FORGERIES.items() if k == kind}
    other = [name for name, (k, _) in FORGERIES.items() if k != kind]
    return {**own, **{name: FORGERIES[name][1] for name in (other[0], other[-3])}}


def opened(app_test, page: str):
    at = app_test.run()
    if page != "explore":
        at.switch_page(f"pages/{page}.py").run()
    assert not at.exception
    return at


def forge(at, widget_id: str, fill) -> None:
    """Rerun with the browser's current widget states, one of them replaced by a forged one."""
    states = at._tree.get_widget_states()
    forged = WidgetStates()
    for state in states.widgets:
        if state.id != widget_id:
            forged.widgets.add().CopyFrom(state)
    new = forged.widgets.add()  # AppTest does not list every widget (a table editor): added in any case
    new.id = widget_id
    fill(new)
    at._run(widget_state=forged)


def widget_kinds(at) -> dict[str, str]:
    """Each widget's id and the kind of value it sends."""
    return {w.id: w.WhichOneof("value") for w in at._tree.get_widget_states().widgets}


def forge_every_widget(at, kinds: dict, reopen, check) -> None:
    """Send every forgery of each widget's kind (and two of others); after each, ``check(at, widget_id, name)``.

    A forgery that raises is collected and the page reopened (``reopen()``); the test fails listing them all.
    """
    failures = []
    for widget_id, kind in kinds.items():
        for name, fill in forgeries_for(kind).items():
            at = reopen() if at.exception else at
            forge(at, widget_id, fill)
            if at.exception:
                failures.append(f"{widget_id.rsplit('-', 1)[-1]}: {name}: {at.exception[0].message[:80]}")
            check(at, widget_id, name)
    assert not failures, "\n".join(failures)


def widget_ids(at) -> list[str]:
    return [w.id for w in at._tree.get_widget_states().widgets]


def sidebar_state(at) -> dict:
    return {key: at.session_state[key] for key in ("preset", "seed", "n", "d", "k", "r", "alpha", "rslora")}


@pytest.mark.parametrize("page", PAGES)
def test_every_widget_survives_every_kind_of_forged_message(app_test, page):
    at = opened(app_test, page)
    kinds = widget_kinds(at)
    assert len(kinds) >= 3

    def example_stays_valid(at, widget_id, name):  # whatever was forged, the example stays valid
        for key, value in sidebar_state(at).items():
            assert key not in ("n", "d", "k", "r") or isinstance(value, int), (widget_id, name, key, value)

    forge_every_widget(at, kinds, lambda: opened(app_test, page), example_stays_valid)


@pytest.mark.parametrize("view", ["model", "finetune", "where", "rank", "before"])
def test_every_real_model_control_survives_every_kind_of_forged_message(app_test, cold_store, view):
    """The Real page's run controls sit in its Fine-tune and rank tabs; a forged value never starts or breaks a run."""
    def open_view():
        app_test.query_params.update({"view": view, "real_steps": "25"})
        return app_test.switch_page("pages/real.py").run()

    at = open_view()
    assert not at.exception
    kinds = widget_kinds(at)
    assert sum("real_" in i for i in kinds) >= {"finetune": 8, "rank": 2}.get(view, 1)

    def settings_stay_good(at, widget_id, name):
        good = at.session_state["_real_last_good"].settings
        assert type(good.r) is int and 1 <= good.r <= 32 and good.steps == 25, (widget_id, name, good)

    forge_every_widget(at, kinds, open_view, settings_stay_good)
    from lora_app.compute import jobs
    assert not jobs._jobs  # no forged message pressed Train


@pytest.mark.parametrize("view", ["qlora", "loraplus"])
def test_every_family_control_survives_every_kind_of_forged_message(app_test, view):
    """The Family page's controls sit in its parts (QLoRA's checkbox; LoRA+'s λ with the task's r*, lr and
    steps): whatever one sends, each of the page's values stays one its table accepts."""
    from lora_app.config import fields
    from lora_app.config.family import family_fields

    def open_view():
        app_test.query_params.update({"view": view, "fam_steps": "20"})
        return app_test.switch_page("pages/family.py").run()

    at = open_view()
    assert not at.exception
    kinds = widget_kinds(at)
    assert sum("fam_" in i for i in kinds) >= {"qlora": 1, "loraplus": 4}[view]

    def values_obey_the_table(at, widget_id, name):  # what the page's own recheck would leave as it is
        table = family_fields(min(at.session_state["d"], at.session_state["k"]))
        values = {f.name: at.session_state[f.name] for f in table}
        assert values == fields.recheck(values, values, table)[0], (widget_id, name, values)

    forge_every_widget(at, kinds, open_view, values_obey_the_table)


def test_a_refused_message_gets_a_notice_that_names_the_control(app_test):
    at = opened(app_test, "explore")
    seed_id = next(i for i in widget_ids(at) if i.endswith("-seed"))
    forge(at, seed_id, FORGERIES["text that is not JSON"][1])
    assert not at.exception
    notices = " ".join(w.value for w in at.warning)
    assert "The control `seed` sent a value this page cannot read" in notices
    assert at.session_state["seed"] == 0  # the last good value


@pytest.mark.parametrize("key,fill", [
    ("n", lambda w: w.double_array_value.data.extend([1e15])),      # Streamlit alone resets it to 1, silently
    ("n", lambda w: w.double_array_value.data.extend([2.5])),       # not a whole number of tokens
    ("n", lambda w: w.double_array_value.data.extend([3, 4])),      # a range for a single slider
    ("seed", lambda w: setattr(w, "int_value", -7)),                # below the input's minimum
    ("alpha", lambda w: w.double_array_value.data.extend([math.nan])),
    ("seed", lambda w: None),                                        # no value at all: it would read as 0
    ("n", lambda w: None),
])
def test_a_value_of_the_right_kind_out_of_range_is_refused_and_the_setting_kept(app_test, key, fill):
    at = opened(app_test, "explore")
    before = sidebar_state(at)
    forge(at, next(i for i in widget_ids(at) if i.endswith(f"-{key}")), fill)
    assert not at.exception
    assert sidebar_state(at) == before
    assert f"control `{key}`" in " ".join(w.value for w in at.warning)
    assert "X (3×5)" in figures(at)


# --- the matrix editors -------------------------------------------------------------------------

def editor_at(app_test):
    at = opened(app_test, "explore")
    open_expander(at, "explore_edit")
    return at


def send_edit(at, payload) -> None:
    key = f"edit_W_{at.session_state['editor_version'].get('W', 0)}"
    at.session_state[key] = payload
    at.run()


W_BEFORE = seed_example().W.numpy()  # the blog's W_Q


@pytest.mark.parametrize("payload,words", [
    ({"edited_rows": {0: {"zzz": "1"}}, "added_rows": [], "deleted_rows": []}, "column `zzz` is not a column 1…3"),
    ({"edited_rows": {-1: {"1": "7"}}, "added_rows": [], "deleted_rows": []}, "row `-1` is not a row 1…5"),
    ({"edited_rows": {"-1": {"1": "7"}}, "added_rows": [], "deleted_rows": []}, "row `-1` is not a row 1…5"),
    ({"edited_rows": {99: {"1": "7"}}, "added_rows": [], "deleted_rows": []}, "row `99` is not a row 1…5"),
    ({"edited_rows": {0: {"0": "7"}}, "added_rows": [], "deleted_rows": []}, "column `0` is not a column 1…3"),
    ({"edited_rows": {0: {"1e0": "7"}}, "added_rows": [], "deleted_rows": []}, "is not a column"),
    ({"edited_rows": {0: "7"}, "added_rows": [], "deleted_rows": []}, "row 1 holds no cells"),
    ({"edited_rows": [1, 2], "added_rows": [], "deleted_rows": []}, "not a table edit"),
    ({"edited_rows": {}, "added_rows": [{"1": "9"}], "deleted_rows": []}, "rows added or deleted"),
    ({"edited_rows": {}, "added_rows": [], "deleted_rows": [0]}, "rows added or deleted"),
    ("not json", "not a table edit"),
    # one bad cell spoils the message: its good cell is not applied either
    ({"edited_rows": {0: {"1": "9", "7": "9"}}, "added_rows": [], "deleted_rows": []}, "column `7`"),
])
def test_a_forged_table_edit_is_refused_and_nothing_is_written(app_test, payload, words):
    at = editor_at(app_test)
    send_edit(at, payload)
    assert not at.exception
    errors = " ".join(e.value for e in at.error)
    assert words in errors and "nothing was changed" in errors
    np.testing.assert_array_equal(heatmap_z(figures(at)["W_Q (5×3)"]), W_BEFORE)
    assert not at.session_state["edits"].get("W")


def test_an_editor_message_that_is_not_json_is_refused_before_streamlit_reads_it(app_test):
    at = editor_at(app_test)
    editor = next(e for e in at.get("dataframe") if "edit_W" in e.proto.id)
    forge(at, editor.proto.id, FORGERIES["text that is not JSON"][1])
    assert not at.exception
    assert "cannot read" in " ".join(w.value for w in at.warning)
    np.testing.assert_array_equal(heatmap_z(figures(at)["W_Q (5×3)"]), W_BEFORE)


@pytest.mark.parametrize("typed,value", [("1e3", 1000.0), ("-2.5e-4", -2.5e-4), ("1E6", 1e6), ("2E-3", 0.002)])
def test_scientific_notation_typed_in_a_cell_means_what_it_says(app_test, typed, value):
    at = editor_at(app_test)
    send_edit(at, {"edited_rows": {1: {"2": typed}}, "added_rows": [], "deleted_rows": []})
    assert not at.exception and not at.error
    assert heatmap_z(figures(at)["W_Q (5×3)"])[1, 1] == value


def test_the_tables_hold_text_that_reads_back_as_exactly_the_numbers(app_test):
    """A cell shows the shortest text of its float, so a cell confirmed unchanged keeps its exact value."""
    at = editor_at(app_test)
    editor = next(e for e in at.get("dataframe") if "edit_W" in e.proto.id)
    assert editor.proto.editing_mode != 0  # a data_editor
    from lora_app.widgets.matrix_editor import cell_text
    for v in (0.1, -0.2, 1 / 3, 1e-7, 123456.789, 0.0, -0.0, 1e6):
        assert float(cell_text(v)) == v and "e" not in cell_text(0.1)


@pytest.mark.parametrize("name", ["adapter.exe", "adapter.zip.txt", "adapter", "a\x00.zip"])
def test_an_upload_of_a_type_the_uploader_does_not_take_is_refused_with_a_notice(app_test, name):
    """The browser offers only .zip files; a forged request can send any name, and Streamlit's own type
    check then raises before the page runs. The guard checks the names first (without reading the file)."""
    at = opened(app_test, "explore")
    open_expander(at, "explore_adapter")
    at.file_uploader(key="adapter_upload").set_value((name, b"PK\x03\x04 whatever", "application/zip")).run()
    assert not at.exception
    assert "The control `adapter_upload` sent a value this page cannot read" in " ".join(w.value for w in at.warning)
    assert at.session_state["r"] == 2 and not at.session_state.get("edits", {}).get("A")
