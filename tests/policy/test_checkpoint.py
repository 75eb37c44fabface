"""Checkpoints: safetensors only, bit-exact round trip, readable errors for bad files."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from takeover.app.policy import default_checkpoint_path
from takeover.app.policy.checkpoint import CheckpointError, load_checkpoint, load_policy, save_checkpoint
from takeover.app.policy.model import ChunkMLP, Policy, PolicyConfig
from takeover.app.policy.testing import SMALL_CONFIG, random_model


def test_round_trip_is_bit_exact(tmp_path: Path) -> None:
    model = random_model(seed=3)
    path = tmp_path / "p.safetensors"
    pid = save_checkpoint(model, path, {"tag": "demo-v1"})
    loaded, pid2, training = load_checkpoint(path)
    assert pid == pid2 and pid.startswith("mlp-chunk-") and len(pid) == len("mlp-chunk-") + 12
    assert training == {"tag": "demo-v1"}
    assert loaded.config == model.config
    want, got = model.state_dict(), loaded.state_dict()
    assert set(want) == set(got)
    for name in want:
        assert want[name].dtype == got[name].dtype
        assert torch.equal(want[name], got[name]), name
    state = np.random.default_rng(0).normal(size=39).astype(np.float32)
    with torch.inference_mode():
        a = model.eval()(torch.from_numpy(state)[None])[0].numpy()
    b = load_policy(path).predict(state)
    assert b.dtype == np.float32 and b.shape == (SMALL_CONFIG.horizon, 4)
    np.testing.assert_array_equal(a, b)
    assert np.all(np.abs(b) <= 1.0)


def test_policy_id_follows_the_bytes(tmp_path: Path) -> None:
    a = save_checkpoint(random_model(seed=1), tmp_path / "a.safetensors")
    a_again = save_checkpoint(random_model(seed=1), tmp_path / "a2.safetensors")
    b = save_checkpoint(random_model(seed=2), tmp_path / "b.safetensors")
    assert a == a_again != b
    assert load_policy(tmp_path / "a2.safetensors").policy_id == a


def test_file_is_safetensors_and_small(tmp_path: Path) -> None:
    path = tmp_path / "full.safetensors"
    save_checkpoint(ChunkMLP(PolicyConfig()), path)  # the default, shipped architecture
    raw = path.read_bytes()
    assert len(raw) < 1_000_000
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    assert header["__metadata__"]["format"] == "takeover-policy"
    assert raw[:1] != b"\x80"  # not a pickle stream
    assert not list(tmp_path.glob("*.tmp"))


def test_predict_refuses_bad_states() -> None:
    p = Policy(random_model(), "x")
    with pytest.raises(ValueError, match="shape"):
        p.predict(np.zeros(38))
    with pytest.raises(ValueError, match="NaN"):
        p.predict(np.full(39, np.nan))


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "not a safetensors file"),
        (b"\x80\x04\x95 definitely a pickle", "not a safetensors file"),
        (struct.pack("<Q", 5) + b"{nope", "header is not JSON"),
    ],
)
def test_garbage_files_are_refused(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "bad.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=reason):
        load_policy(path)


def test_truncated_file_is_refused(checkpoint: Path) -> None:
    raw = checkpoint.read_bytes()
    checkpoint.write_bytes(raw[: len(raw) - 100])
    with pytest.raises(CheckpointError, match=r"corrupt|not a safetensors"):
        load_policy(checkpoint)


def test_foreign_safetensors_are_refused(tmp_path: Path) -> None:
    plain = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(3)}, str(plain))
    with pytest.raises(CheckpointError, match="no metadata"):
        load_policy(plain)
    other = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(3)}, str(other), metadata={"format": "something-else"})
    with pytest.raises(CheckpointError, match="format 'something-else'"):
        load_policy(other)


def test_tensors_must_match_the_config(tmp_path: Path) -> None:
    model = random_model()
    tensors = {k: v.clone() for k, v in model.state_dict().items()}
    tensors["net.0.weight"] = torch.zeros(7, 7)
    meta = {"format": "takeover-policy", "format_version": "1", "config": model.config.to_json()}
    path = tmp_path / "mismatch.safetensors"
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(CheckpointError, match=r"net\.0\.weight"):
        load_policy(path)
    tensors = {k: v.clone() for k, v in model.state_dict().items()}
    tensors["net.0.bias"][0] = float("nan")
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(CheckpointError, match="NaN"):
        load_policy(path)
    del tensors["net.0.bias"]
    save_file(tensors, str(path), metadata=meta)
    with pytest.raises(CheckpointError, match="missing"):
        load_policy(path)


def test_unknown_version_and_bad_config(tmp_path: Path) -> None:
    model = random_model()
    tensors = model.state_dict()
    path = tmp_path / "v.safetensors"
    save_file(
        tensors, str(path), metadata={"format": "takeover-policy", "format_version": "99", "config": "{}"}
    )
    with pytest.raises(CheckpointError, match="format version '99'"):
        load_policy(path)
    bad = json.dumps({"horizon": 0})
    save_file(
        tensors, str(path), metadata={"format": "takeover-policy", "format_version": "1", "config": bad}
    )
    with pytest.raises(CheckpointError, match=r"invalid config.*horizon"):
        load_policy(path)


def test_missing_checkpoint_and_default_path(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_policy(tmp_path / "nope.safetensors")
    default = default_checkpoint_path()
    assert default.parent.name == "policy" and default.parent.parent.name == "assets"
    assert default.suffix == ".safetensors"
    if not default.exists():
        with pytest.raises(CheckpointError, match=r"does not exist"):
            load_policy(default)
    else:
        assert load_policy(default).predict(np.zeros(39, np.float32)).shape[1] == 4
