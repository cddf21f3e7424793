"""Checkpoints: exact round trip, specific errors for bad files, nothing half-written; hostile
files (flipped bytes, NaN weights, edited configs) refused before anything large is allocated."""

import json
import resource
import shutil

import pytest
import torch

from lm_torch import judges as J
from lm_torch.checkpoint import load_checkpoint, save_checkpoint
from lm_torch.io import CheckpointError
from lm_torch.model import GPT, GPTConfig
from lm_torch.tokenizer import CharTokenizer

pytestmark = pytest.mark.unit


@pytest.fixture
def saved(tmp_path, tiny_tokenizer):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=tiny_tokenizer.vocab_size, block_size=16, n_layer=1,
                          n_head=2, n_embd=16))
    path = save_checkpoint(tmp_path / "ck", model, tiny_tokenizer, meta={"step": 3})
    return path, model


def test_round_trip(saved):
    path, model = saved
    ck = load_checkpoint(path)
    x = torch.randint(0, 100, (2, 8))
    torch.testing.assert_close(ck.model(x).logits, model(x).logits, rtol=0, atol=0)
    assert ck.meta["step"] == 3
    assert ck.model.lm_head.weight is ck.model.wte.weight  # tying survives


def test_missing_and_corrupt(saved, tmp_path):
    path, _ = saved
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope")
    bad = tmp_path / "bad"
    shutil.copytree(path, bad)
    (bad / "model.safetensors").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(bad)
    (bad / "config.json").write_text("{")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(bad)


def test_tokenizer_that_does_not_match_the_model(saved, tmp_path):
    path, _ = saved
    other = tmp_path / "other"
    shutil.copytree(path, other)
    CharTokenizer.train(["abc"]).save(other / "tokenizer.json")
    with pytest.raises(CheckpointError, match="tokenizer .* has 6 tokens but the model expects"):
        load_checkpoint(other)


def test_a_failed_save_keeps_the_old_checkpoint(saved, tiny_tokenizer, monkeypatch):
    path, model = saved
    before = (path / "model.safetensors").read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(type(tiny_tokenizer), "save", boom)
    with torch.no_grad():
        model.wte.weight += 1
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, tiny_tokenizer, meta={"step": 4})
    assert (path / "model.safetensors").read_bytes() == before
    assert json.loads((path / "config.json").read_text())["step"] == 3
    assert [p.name for p in path.parent.iterdir()] == ["ck"]  # no temp directory left


# --- hostile files ------------------------------------------------------------------------------
def flip_a_weight_byte(path):
    """Flip one byte in the tensor data of a safetensors file (past its header)."""
    blob = bytearray(path.read_bytes())
    i = 8 + int.from_bytes(blob[:8], "little") + 100
    blob[i] ^= 0x01  # a low mantissa bit: the weights stay finite and plausible
    path.write_bytes(bytes(blob))


def edit_json(path, change):
    data = json.loads(path.read_text())
    path.write_text(json.dumps(change(data)))


@pytest.fixture
def copy(saved, tmp_path):
    """A copy of the saved checkpoint, to corrupt."""
    return shutil.copytree(saved[0], tmp_path / "copy")


def test_config_records_the_hashes_of_weights_and_tokenizer(saved):
    import hashlib

    path, _ = saved
    record = json.loads((path / "config.json").read_text())["sha256"]
    for name in ("model.safetensors", "tokenizer.json"):
        assert record[name] == hashlib.sha256((path / name).read_bytes()).hexdigest()


def test_a_flipped_byte_in_the_weights_is_refused(copy):
    flip_a_weight_byte(copy / "model.safetensors")
    with pytest.raises(CheckpointError,
                       match="model.safetensors does not match its recorded hash"):
        load_checkpoint(copy)


def test_an_edited_tokenizer_is_refused(copy):
    text = (copy / "tokenizer.json").read_text()
    (copy / "tokenizer.json").write_text(text + " ")  # same tokens, other bytes
    with pytest.raises(CheckpointError, match="tokenizer.json does not match its recorded hash"):
        load_checkpoint(copy)


def test_nan_weights_saved_with_a_valid_hash_are_refused(saved, tiny_tokenizer, tmp_path):
    _, model = saved
    with torch.no_grad():
        model.blocks[0].mlp.c_fc.weight[3, 5] = float("nan")
    path = save_checkpoint(tmp_path / "nan", model, tiny_tokenizer)
    with pytest.raises(CheckpointError, match="NaN or inf in tensor blocks.0.mlp.c_fc.weight"):
        load_checkpoint(path)


def test_a_checkpoint_without_hashes_loads_with_the_other_checks(saved, tiny_tokenizer,
                                                                  tmp_path):
    """Checkpoints saved before hashes were recorded are accepted; shapes and finiteness are
    still checked."""
    path, model = saved
    old = shutil.copytree(path, tmp_path / "old")
    edit_json(old / "config.json", lambda d: {k: v for k, v in d.items() if k != "sha256"})
    x = torch.randint(0, 100, (2, 8))
    torch.testing.assert_close(load_checkpoint(old).model(x).logits, model(x).logits)
    with torch.no_grad():
        model.ln_f.weight[0] = float("inf")
    nan = save_checkpoint(tmp_path / "old_nan", model, tiny_tokenizer)
    edit_json(nan / "config.json", lambda d: {k: v for k, v in d.items() if k != "sha256"})
    with pytest.raises(CheckpointError, match="NaN or inf in tensor ln_f.weight"):
        load_checkpoint(nan)


def peak_rss_growth_mb(fn) -> float:
    """How far the process's peak resident memory rose while ``fn`` ran, in MB (Linux: KiB)."""
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    fn()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024


@pytest.mark.parametrize("change, message", [
    ({"n_embd": 8192, "n_layer": 8}, "says 8 layers but .* holds 1"),
    ({"n_embd": 8192}, r"tensor \S+ is \(\d+, 16\) in the file but \(\d+, 8192\) by the config"),
    ({"block_size": 1 << 20}, r"wpe.weight is \(16, 16\) in the file but \(1048576, 16\)"),
])
def test_an_edited_config_is_refused_before_the_model_is_allocated(copy, change, message):
    """n_embd 8192 with 8 layers is a 6e9-parameter model (25 GB); the header says otherwise."""
    edit_json(copy / "config.json", lambda d: {**d, "model": {**d["model"], **change}})

    def load():
        with pytest.raises(CheckpointError, match=message):
            load_checkpoint(copy)

    assert peak_rss_growth_mb(load) < 200


@pytest.mark.parametrize("config, message", [
    ([1, 2], "config.json is not a JSON object"),
    ("text", "config.json is not a JSON object"),
    ({"format_version": 1}, "'model' section is missing"),
    ({"format_version": 1, "model": [16]}, "'model' section is not a JSON object"),
    ({"format_version": 1, "model": {"n_embd": "16"}}, "n_embd must be a int, not '16'"),
    ({"format_version": 1, "model": {"n_embd": True}}, "n_embd must be a int, not True"),
    ({"format_version": 1, "model": {"n_embd": 16.5}}, "n_embd must be a int"),
    ({"format_version": 1, "model": {"width": 16}}, "unknown field 'width'"),
    ({"format_version": 1, "model": {"n_head": 0}}, "is invalid"),
    ({"format_version": 1, "model": {"n_embd": 16, "n_head": 3}}, "must be divisible"),
    ({"format_version": 1, "model": {"n_layer": -1}}, "n_layer must be > 0"),
    ({"format_version": 1, "model": {"attn_impl": "flash"}}, "attn_impl must be one of"),
    ({"format_version": 1, "model": {"dropout": 2.0}}, "dropout must be in"),
])
def test_a_config_that_is_not_a_model_config_is_refused(copy, config, message):
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(copy)


def test_an_invalid_hash_record_is_refused(copy):
    edit_json(copy / "config.json", lambda d: {**d, "sha256": "abc"})
    with pytest.raises(CheckpointError, match="invalid 'sha256' record"):
        load_checkpoint(copy)
    edit_json(copy / "config.json", lambda d: {**d, "sha256": {"tokenizer.json": "0"}})
    with pytest.raises(CheckpointError, match="records no hash for model.safetensors"):
        load_checkpoint(copy)


def test_the_cli_refuses_a_corrupt_checkpoint_with_exit_2(copy, capsys):
    from rlaif_lab.cli import main

    flip_a_weight_byte(copy / "model.safetensors")
    with pytest.raises(SystemExit) as e:
        main(["sample", "--checkpoint", str(copy), "--max_new_tokens", "4"])
    err = capsys.readouterr().err
    assert e.value.code == 2, err
    assert "model.safetensors does not match its recorded hash" in err
    assert "Traceback" not in err


# --- the encoder judges -------------------------------------------------------------------------
@pytest.fixture
def encoder(tmp_path):
    torch.manual_seed(0)
    enc = J.TextEncoder(50, J.EncoderConfig(d_model=16, nhead=2, num_layers=1, max_len=8), 2)
    J.save_encoder(tmp_path / "enc", enc)
    return tmp_path / "enc", enc


def test_encoder_round_trip(encoder):
    path, enc = encoder
    ids, mask = torch.randint(0, 50, (2, 6)), torch.ones(2, 6, dtype=torch.bool)
    torch.testing.assert_close(J.load_encoder(path)(ids, mask), enc.eval()(ids, mask),
                               rtol=0, atol=0)


def test_encoder_with_a_flipped_byte_is_refused(encoder):
    path, _ = encoder
    flip_a_weight_byte(path / "encoder.safetensors")
    with pytest.raises(CheckpointError,
                       match="encoder.safetensors does not match its recorded hash"):
        J.load_encoder(path)


def test_encoder_with_nan_weights_is_refused(encoder, tmp_path):
    _, enc = encoder
    with torch.no_grad():
        enc.head.bias[1] = float("nan")
    J.save_encoder(tmp_path / "nan", enc)
    with pytest.raises(CheckpointError, match="NaN or inf in tensor head.bias"):
        J.load_encoder(tmp_path / "nan")


@pytest.mark.parametrize("meta, message", [
    ([1, 2], "encoder.json is not a JSON object"),
    ({"vocab_size": 50, "n_out": 2}, "'config' section is missing"),
    ({"config": {"d_model": 16}, "vocab_size": "50", "n_out": 2}, "vocab_size must be a positive"),
    ({"config": {"d_model": 15, "nhead": 2}, "vocab_size": 50, "n_out": 2}, "divisible"),
    ({"config": {"d_model": 8192, "nhead": 2, "num_layers": 1, "max_len": 8}, "vocab_size": 50,
      "n_out": 2}, r"tensor \S+ is \(\d+, 16\) in the file but \(\d+, 8192\)"),
    ({"config": {"d_model": 16, "nhead": 2, "num_layers": 9}, "vocab_size": 50, "n_out": 2},
     "says 9 layers but .* holds 1"),
])
def test_encoder_with_a_bad_config_is_refused(encoder, meta, message):
    path, _ = encoder
    (path / "encoder.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=message):
        J.load_encoder(path)
