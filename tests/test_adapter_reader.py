"""The reader of whole adapters (lora_core.upload.many) against PEFT: adapters PEFT saves for small, randomly
initialised transformers models (a Llama-shaped one with rank_pattern and alpha_pattern, GPT-2's Conv1D, BERT, and
DoRA and rsLoRA), zipped or as two files or a folder, read back tensor for tensor; and what it refuses."""
from __future__ import annotations

import io
import json
import warnings
import zipfile
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import BertConfig, BertModel, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

from lora_core.upload.many import read_adapter
from lora_core.upload.sources import MAX_UPLOAD_BYTES

CONFIG, WEIGHTS = "adapter_config.json", "adapter_model.safetensors"


def _llama():
    torch.manual_seed(0)
    return LlamaForCausalLM(LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
                                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=16))


def _gpt2():
    torch.manual_seed(0)
    return GPT2LMHeadModel(GPT2Config(vocab_size=64, n_embd=32, n_layer=2, n_head=4, n_positions=16))


def _bert():
    torch.manual_seed(0)
    return BertModel(BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                intermediate_size=48, max_position_embeddings=16))


CASES = {
    "llama-rank-pattern": (_llama, dict(r=4, lora_alpha=8, target_modules=["q_proj", "k_proj", "v_proj", "o_proj",
                                                                             "gate_proj", "up_proj", "down_proj"],
                                        rank_pattern={"model.layers.1.self_attn.q_proj": 2, "down_proj": 6},
                                        alpha_pattern={"v_proj": 3.0})),
    "llama-dora-rslora-bf16": (_llama, dict(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj"], use_dora=True,
                                            use_rslora=True)),
    "gpt2-conv1d": (_gpt2, dict(r=3, lora_alpha=6, target_modules=["c_attn", "c_proj", "c_fc"], fan_in_fan_out=True)),
    "bert": (_bert, dict(r=2, lora_alpha=4, target_modules=["query", "value", "dense"])),
}


def _saved(tmp_path: Path, case: str, dtype=None) -> tuple[Path, object]:
    make, kw = CASES[case]
    base = make()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_peft_model(base, LoraConfig(init_lora_weights=False, **kw))
    if dtype is not None:
        model = model.to(dtype)
    folder = tmp_path / case
    model.save_pretrained(str(folder))
    return folder, model


def _zip(folder: Path, inside: str = "") -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in (CONFIG, WEIGHTS):
            zf.write(folder / name, f"{inside}{name}")
    return buf.getvalue()


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("how", ["zip", "zip-in-folder", "two-files", "folder"])
def test_every_module_reads_back_as_peft_saved_it_and_peft_agrees_on_its_scaling(tmp_path, case, how):
    folder, model = _saved(tmp_path, case, torch.bfloat16 if "bf16" in case else None)
    source = {"zip": lambda: _zip(folder), "zip-in-folder": lambda: _zip(folder, "my-adapter/"),
              "two-files": lambda: {CONFIG: (folder / CONFIG).read_bytes(), WEIGHTS: (folder / WEIGHTS).read_bytes()},
              "folder": lambda: folder}[how]()
    adapter = read_adapter(source)
    stored = load_file(str(folder / WEIGHTS))
    peft_layers = {n.removeprefix("base_model.model."): m for n, m in model.named_modules() if hasattr(m, "lora_A")
                   and "default" in getattr(m, "lora_A", {})}
    assert set(adapter.infos) == set(peft_layers)
    read = {m.name: m for m in adapter.modules()}
    assert list(read) == list(adapter.infos)
    for name, m in read.items():
        key = f"base_model.model.{name}"
        assert torch.equal(m.A, stored[f"{key}.lora_A.weight"].float().T), name
        assert torch.equal(m.B, stored[f"{key}.lora_B.weight"].float().T), name
        layer = peft_layers[name]
        assert m.info.r == layer.r["default"] and m.info.scaling == pytest.approx(layer.scaling["default"], rel=1e-15)
        assert (m.info.d_in, m.info.d_out) == (layer.in_features, layer.out_features)
        if adapter.config.dora:
            assert torch.equal(m.magnitude, stored[f"{key}.lora_magnitude_vector"].float())
        else:
            assert m.magnitude is None
    assert adapter.trained == sum(t.numel() for t in stored.values())
    # and PEFT, loading the same folder on the same base, has the same factors
    loaded = PeftModel.from_pretrained(CASES[case][0](), str(folder))
    for name, m in read.items():
        layer = loaded.base_model.model.get_submodule(name)
        assert torch.equal(layer.lora_A["default"].weight.float().T, m.A) and layer.r["default"] == m.info.r


def test_rank_and_alpha_patterns_give_each_module_its_own(tmp_path):
    folder, _ = _saved(tmp_path, "llama-rank-pattern")
    infos = read_adapter(folder).infos
    assert infos["model.layers.1.self_attn.q_proj"].r == 2 and infos["model.layers.0.self_attn.q_proj"].r == 4
    assert infos["model.layers.0.mlp.down_proj"].r == 6 and infos["model.layers.0.mlp.down_proj"].scaling == 8 / 6
    assert infos["model.layers.0.self_attn.v_proj"].alpha == 3.0 and infos["model.layers.0.self_attn.v_proj"].scaling == 3 / 4


def test_embedding_adapters_and_other_tensors_are_listed_with_the_reason(tmp_path):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = get_peft_model(_llama(), LoraConfig(r=2, lora_alpha=4, target_modules=["q_proj", "embed_tokens"],
                                                    init_lora_weights=False))
    model.save_pretrained(str(tmp_path / "emb"))
    adapter = read_adapter(tmp_path / "emb")
    assert all(n.endswith("q_proj") for n in adapter.infos) and len(adapter.infos) == 2
    reasons = {s.key: s.reason for s in adapter.skipped}
    assert "embedding" in reasons.pop("model.embed_tokens.lora_embedding_A")
    assert "embedding" in reasons.pop("model.embed_tokens.lora_embedding_B")
    # PEFT saves the embedding's own weight beside its adapter (save_embedding_layers): listed, not read
    assert reasons == {"model.embed_tokens.base_layer.weight": "not a LoRA factor (a modules_to_save copy or another "
                                                               "tuner's tensor)"}


# --- refusals --------------------------------------------------------------------------------------------------

def _two(config: dict, tensors: dict) -> dict:
    buf = io.BytesIO()
    path = Path(__import__("tempfile").mkdtemp()) / "w.safetensors"
    save_file(tensors, str(path))
    buf.write(path.read_bytes())
    return {CONFIG: json.dumps(config).encode(), WEIGHTS: buf.getvalue()}


GOOD = {"peft_type": "LORA", "r": 2, "lora_alpha": 4}
A = "base_model.model.layers.0.q_proj.lora_A.weight"
B = "base_model.model.layers.0.q_proj.lora_B.weight"


@pytest.mark.parametrize("config, tensors, words", [
    (GOOD, {A: torch.zeros(3, 8), B: torch.zeros(8, 3)}, "gives it r = 2"),
    (GOOD, {A: torch.zeros(2, 8)}, "has no lora_B.weight"),
    (GOOD, {A: torch.zeros(2, 8), B: torch.full((8, 2), float("nan"))}, "is not a finite number"),
    (GOOD, {A: torch.zeros(2, 8), B: torch.full((8, 2), 1e9)}, "is beyond"),
    ({**GOOD, "peft_type": "IA3"}, {A: torch.zeros(2, 8), B: torch.zeros(8, 2)}, "only LoRA adapters"),
    ({**GOOD, "rank_pattern": {"(a+)+$": 2}}, {A: torch.zeros(2, 8), B: torch.zeros(8, 2)}, "not a module name"),
    ({**GOOD, "use_dora": True}, {A: torch.zeros(2, 8), B: torch.zeros(8, 2)}, "no lora_magnitude_vector"),
    (GOOD, {"base_model.model.layers.0.q_proj;rm -rf.lora_A.weight": torch.zeros(2, 8),
            "base_model.model.layers.0.q_proj;rm -rf.lora_B.weight": torch.zeros(8, 2)}, "not a module path"),
    (GOOD, {A: torch.zeros(2, 8, dtype=torch.int32), B: torch.zeros(8, 2)}, "only floating-point"),
    (GOOD, {"base_model.model.x.lora_embedding_A": torch.zeros(2, 8)}, "holds no LoRA module"),
])
def test_bad_adapters_are_refused_naming_the_file_and_the_problem(config, tensors, words):
    with pytest.raises(ValueError) as e:
        list(read_adapter(_two(config, tensors)).modules())   # the values are checked as they are read
    assert words in str(e.value), str(e.value)


def test_pickles_wrong_sources_and_oversized_uploads_are_refused(tmp_path):
    with pytest.raises(ValueError, match="never a pickle"):
        read_adapter({CONFIG: b"{}", "adapter_model.bin": b"x"})
    with pytest.raises(ValueError, match="missing"):
        read_adapter({CONFIG: json.dumps(GOOD).encode()})
    with pytest.raises(ValueError, match="over the limit"):
        read_adapter(bytes(MAX_UPLOAD_BYTES + 1))
    with pytest.raises(ValueError, match="not a zip"):
        read_adapter(b"hello")
    with pytest.raises(ValueError, match="neither an adapter folder"):
        read_adapter(tmp_path / "nothing-here")
