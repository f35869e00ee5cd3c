"""Saved fine-tuning runs (lora_core.runs): a round trip keeps every number, and a file that fails any check is refused."""
from dataclasses import replace

import pytest
import torch

from lora_core import runs
from lora_core.finetune import FinetuneSettings, finetune
from lora_core.runs import MAX_RUN_BYTES, load_run, read_run, run_bytes, run_path, save_run
from lora_core.tiny import load_base_model, model_digest

LORA = FinetuneSettings(task="reverse", targets=("q", "v"), r=4, steps=25, seed=7001)
FULL = FinetuneSettings(task="permute", steps=25, seed=7002, full=True)
DORA = FinetuneSettings(task="reverse", targets=("q", "v", "ffn"), r=4, steps=25, seed=7003, variant="dora")
# the rest of the family: QLoRA's and PiSSA's frozen base is made again when read; VeRA's file holds d and b only
OTHERS = {v: replace(LORA, variant=v, seed=7004 + i, targets=("q", "v", "ffn"))
          for i, v in enumerate(("qlora", "pissa", "loraplus", "vera"))}
KINDS = ["lora", "full", "dora", *OTHERS]


@pytest.fixture(scope="module")
def base():
    return load_base_model()


@pytest.fixture(scope="module")
def trained(base):
    return ({"lora": finetune(base, LORA), "full": finetune(base, FULL), "dora": finetune(base, DORA)}
            | {v: finetune(base, s) for v, s in OTHERS.items()})


def assert_same_run(a, b):
    assert a.settings == b.settings
    for field in ("losses", "eval_steps", "accuracies", "scaling", "trainable", "total", "wall_s", "peak_bytes",
                  "memory_how", "device", "dtype", "stopped", "frozen_bytes"):
        assert getattr(a, field) == getattr(b, field), field
    assert a.adapters.keys() == b.adapters.keys() and a.full_state.keys() == b.full_state.keys()
    for n in a.adapters:
        for x, y in zip(a.adapters[n], b.adapters[n]):
            assert torch.equal(x, y), n
    for k in a.full_state:
        assert torch.equal(a.full_state[k], b.full_state[k]), k
    assert a.magnitudes.keys() == b.magnitudes.keys()
    for n in a.magnitudes:
        assert torch.equal(a.magnitudes[n], b.magnitudes[n]), n
    assert a.vectors.keys() == b.vectors.keys()
    for n in a.vectors:
        assert all(torch.equal(x, y) for x, y in zip(a.vectors[n], b.vectors[n])), n


@pytest.mark.parametrize("kind", KINDS)
def test_a_run_reads_back_as_exactly_the_run_that_was_written(base, trained, kind):
    run = trained[kind]
    back = read_run(run_bytes(run, model_digest(base)), base, run.settings)
    assert_same_run(run, back)
    assert read_run(run_bytes(run, model_digest(base)), base).settings == run.settings  # no settings asked


@pytest.mark.parametrize("kind", KINDS)
def test_save_and_load_through_a_folder(base, trained, tmp_path, kind):
    run = trained[kind]
    path = save_run(tmp_path, run, model_digest(base))
    assert path == run_path(tmp_path, run.settings) and path.name == f"{run.settings.key()}.safetensors"
    assert_same_run(run, load_run(tmp_path, base, run.settings))
    assert load_run(tmp_path, base, replace(run.settings, seed=run.settings.seed + 1)) is None  # no file: no run
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # nothing left beside it


def rewritten(base, run, settings_edit) -> bytes:
    """The run's file with its recorded settings edited by ``settings_edit(settings dict)``."""
    import json
    blob = run_bytes(run, model_digest(base))
    header_len = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + header_len])
    meta = json.loads(header["__metadata__"]["run"])
    settings_edit(meta["settings"])
    header["__metadata__"]["run"] = json.dumps(meta)
    head = json.dumps(header).encode()
    return len(head).to_bytes(8, "little") + head + blob[8 + header_len:]


def refused(data, base, settings, words):
    with pytest.raises(ValueError) as e:
        read_run(data, base, settings)
    assert words in str(e.value), str(e.value)


def test_truncated_bytes_and_garbage_are_not_run_files(base, trained):
    data = run_bytes(trained["lora"], model_digest(base))
    for bad in (data[: len(data) // 2], data[:100], data[:7], b"", b"hello, this is no run at all" * 10,
                (2**40).to_bytes(8, "little") + data[8:], data[:8] + b"{not json" + data[17:]):
        refused(bad, base, LORA, "it is not a run file")


def test_a_file_over_the_limit_is_refused_before_it_is_parsed(base, tmp_path):
    refused(b"\0" * (MAX_RUN_BYTES + 1), base, LORA, f"more than a run's {MAX_RUN_BYTES:,}")
    run_path(tmp_path, LORA).write_bytes(b"\0" * (MAX_RUN_BYTES + 10))
    with pytest.raises(ValueError, match="more than a run's"):
        load_run(tmp_path, base, LORA)


def test_a_run_of_another_base_model_is_refused(base, trained):
    other = load_base_model()
    with torch.no_grad():
        other.layers[1].v_proj.weight[3, 5] += 1e-3  # one number of a copy of the base
    assert model_digest(other) != model_digest(base)
    refused(run_bytes(trained["lora"], model_digest(other)), base, LORA, "trained on a different base model")
    refused(run_bytes(trained["lora"], model_digest(base)), other, LORA, "trained on a different base model")


@pytest.mark.parametrize("asked", [replace(LORA, seed=LORA.seed + 1), replace(LORA, r=8), replace(LORA, task="permute"),
                                   replace(LORA, full=True), replace(LORA, lr=3e-3)])
def test_a_run_of_other_settings_than_the_ones_asked_for_is_refused(base, trained, asked):
    refused(run_bytes(trained["lora"], model_digest(base)), base, asked, "its settings are not the ones asked for")


def test_a_tensor_of_the_wrong_shape_is_refused(base, trained):
    run = trained["lora"]
    name = next(iter(run.adapters))
    A, B = run.adapters[name]
    for pair in ((A[:, :-1], B[:-1]), (A.T.contiguous(), B.T.contiguous()), (A, B[:, :-1])):
        bad = run._replace(adapters={**run.adapters, name: pair})
        refused(run_bytes(bad, model_digest(base)), base, LORA, "its tensors are not the ones its settings train")
    missing = run._replace(adapters={n: p for n, p in run.adapters.items() if n != name})
    refused(run_bytes(missing, model_digest(base)), base, LORA, "its tensors are not the ones its settings train")
    full = trained["full"]
    key = next(iter(full.full_state))
    extra = full._replace(full_state={**full.full_state, "extra.weight": torch.zeros(2)})
    refused(run_bytes(extra, model_digest(base)), base, FULL, "its tensors are not the ones its settings train")
    short = full._replace(full_state={**full.full_state, key: full.full_state[key].flatten()[:-1].clone()})
    refused(run_bytes(short, model_digest(base)), base, FULL, "its tensors are not the ones its settings train")


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_a_tensor_holding_a_non_finite_number_is_refused(base, trained, value):
    run = trained["lora"]
    name = next(iter(run.adapters))
    A, B = run.adapters[name]
    A = A.clone()
    A[1, 2] = value
    bad = run._replace(adapters={**run.adapters, name: (A, B)})
    refused(run_bytes(bad, model_digest(base)), base, LORA, "not a finite number")
    full = trained["full"]
    key = next(iter(full.full_state))
    W = full.full_state[key].clone()
    W.view(-1)[0] = value
    refused(run_bytes(full._replace(full_state={**full.full_state, key: W}), model_digest(base)), base, FULL,
            "not a finite number")


@pytest.mark.parametrize("kind", ["lora", "full"])
@pytest.mark.parametrize("change", [1 / 8000, 0.02, 0.1])
def test_an_accuracy_its_weights_do_not_reach_is_refused(base, trained, kind, change):
    """The last accuracy is measured again from the weights; one digit in 8,000 off is already a refusal here."""
    run = trained[kind]
    acc = run.accuracies[-1] + change if run.accuracies[-1] + change <= 1 else run.accuracies[-1] - change
    bad = run._replace(accuracies=run.accuracies[:-1] + (acc,))
    refused(run_bytes(bad, model_digest(base)), base, run.settings, f"not the {acc:.2%} it records")


def test_weights_changed_under_their_accuracy_are_refused(base, trained):
    run = trained["lora"]
    name = next(iter(run.adapters))
    A, B = run.adapters[name]
    bad = run._replace(adapters={**run.adapters, name: (A, 50 * B)})
    refused(run_bytes(bad, model_digest(base)), base, LORA, "held-out accuracy, not the")


def test_curves_that_are_not_a_finished_run_are_refused(base, trained):
    run = trained["lora"]
    for bad, words in ((run._replace(losses=run.losses[:-1]), "its curves do not match"),
                       (run._replace(eval_steps=run.eval_steps[:-1]), "its curves do not match"),
                       (run._replace(losses=run.losses[:-1] + (float("nan"),)), "its losses are not finite"),
                       (run._replace(accuracies=run.accuracies[:-1] + (1.5,)), "its accuracies are not finite")):
        refused(run_bytes(bad, model_digest(base)), base, LORA, words)


def test_settings_no_run_can_use_are_refused(base, trained):
    run = trained["lora"]
    bad = run._replace(settings=replace(LORA, r=40))  # above the width 32 of Q and V
    refused(run_bytes(bad, model_digest(base)), base, None, "above the width")


def test_a_stopped_run_is_not_saved(base, trained, tmp_path):
    with pytest.raises(ValueError, match="a stopped run is not saved"):
        save_run(tmp_path, trained["lora"]._replace(stopped=True), model_digest(base))
    assert not list(tmp_path.iterdir())
    refused(run_bytes(trained["lora"]._replace(stopped=True), model_digest(base)), base, LORA, "its curves do not match")


def test_save_writes_a_temporary_file_and_renames_it_into_place(base, trained, tmp_path, monkeypatch):
    old = run_path(tmp_path, LORA)
    old.write_bytes(b"an older version")
    calls = []
    real_replace = runs.os.replace

    def spy(src, dst):
        calls.append((src, dst, old.read_bytes()))  # at the rename, the target still holds the old file
        real_replace(src, dst)

    monkeypatch.setattr(runs.os, "replace", spy)
    path = save_run(tmp_path, trained["lora"], model_digest(base))
    assert len(calls) == 1
    src, dst, before = calls[0]
    assert str(src).endswith(".tmp") and str(src).startswith(str(tmp_path)) and str(dst) == str(path)
    assert before == b"an older version"
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    assert_same_run(trained["lora"], load_run(tmp_path, base, LORA))


def test_a_failed_save_leaves_no_temporary_file_and_the_old_file_in_place(base, trained, tmp_path, monkeypatch):
    old = run_path(tmp_path, LORA)
    old.write_bytes(b"an older version")

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(runs, "run_bytes", fail)
    with pytest.raises(OSError):
        save_run(tmp_path, trained["lora"], model_digest(base))
    assert old.read_bytes() == b"an older version"
    assert [p.name for p in tmp_path.iterdir()] == [old.name]


def test_a_dora_run_is_its_own_file_and_a_file_written_before_dora_still_reads(base, trained):
    """DoRA's settings name a file of their own (a LoRA run's name is as it was), its magnitudes are checked like its
    factors. A file whose settings predate the dora field reads as the LoRA run it is, and one with the dora field
    (written before the other variants) as the LoRA or DoRA run it names."""
    dora, lora = trained["dora"], trained["lora"]
    assert dora.settings.key().startswith("dora-") and lora.settings.key().startswith("lora-")
    assert dora.trainable == sum(A.numel() + B.numel() for A, B in dora.adapters.values()) + sum(
        m.numel() for m in dora.magnitudes.values())
    without_m = dora._replace(magnitudes={})
    refused(run_bytes(without_m, model_digest(base)), base, DORA, "its tensors are not the ones its settings train")
    # as every run saved before DoRA was written: no variant and no dora
    assert_same_run(lora, read_run(rewritten(base, lora, lambda s: s.pop("variant")), base, LORA))
    # as runs saved before the other variants: a dora field, true or false
    for run, settings, flag in ((lora, LORA, False), (dora, DORA, True)):
        assert_same_run(run, read_run(rewritten(base, run, lambda s: s.update(dora=flag) or s.pop("variant")), base, settings))
    refused(rewritten(base, lora, lambda s: s.update(dora="yes") or s.pop("variant")), base, LORA,
            "dora is not true or false")


def test_a_vera_file_holds_only_what_trained_and_its_layers_are_made_again_from_peft_key(base, trained):
    """VeRA's run file stores d and b per layer (r + d_out numbers), not the frozen projections; a file with A and B
    instead is refused, and the layers read back are A·diag(d) and B·diag(b) with PEFT's projections."""
    from safetensors.torch import load
    vera = trained["vera"]
    stored = load(run_bytes(vera, model_digest(base)))
    assert set(stored) == {f"{n}.{p}" for n in vera.adapters for p in "db"}
    assert sum(t.numel() for t in stored.values()) == vera.trainable
    # the same run written as LoRA (A and B stored), its settings then marked VeRA
    as_lora = vera._replace(settings=replace(vera.settings, variant="lora"), vectors={})
    refused(rewritten(base, as_lora, lambda s: s.update(variant="vera")), base, vera.settings,
            "its tensors are not the ones its settings train")
