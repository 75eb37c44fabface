"""Policy checkpoints: one safetensors file holding the weights, the normalisation statistics and,
in its metadata, the model configuration and a training record. No pickle is involved anywhere.

Metadata keys (all strings, as safetensors requires):

- ``format``: ``"takeover-policy"``; ``format_version``: ``"1"``
- ``config``: :class:`~takeover.app.policy.model.PolicyConfig` as JSON
- ``training``: a JSON object describing how the weights were made (free form)
- ``value_config`` (only with a value model, e.g. of ``recap``):
  :class:`~takeover.app.policy.value.ValueConfig` as JSON; the value model's tensors are named
  ``value.<name>`` beside the policy's

The policy id is ``<config.name>-<12 hex digits>``, the start of a SHA-256 over the canonical
content (metadata sorted by key, then every tensor by name with its dtype, shape and bytes). The
file bytes themselves are not hashed because safetensors writes the metadata map in no fixed
order; equal content gives an equal id and any change to weights, statistics or config changes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from takeover.app.policy.model import ChunkMLP, Policy, PolicyConfig
from takeover.app.policy.value import ValueConfig, ValueMLP

FORMAT = "takeover-policy"
FORMAT_VERSION = "1"
MAX_CHECKPOINT_BYTES = 256 * 1024 * 1024
VALUE_PREFIX = "value."


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable or not a Takeover policy; the message says which."""


def save_checkpoint(
    model: ChunkMLP,
    path: str | os.PathLike[str],
    training: dict[str, Any] | None = None,
    value: ValueMLP | None = None,
) -> str:
    """Write ``model`` (and its ``value`` model, if any) to ``path`` atomically and return the
    policy id of the written file."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": model.config.to_json(),
        "training": json.dumps(training or {}, sort_keys=True),
    }
    if value is not None:
        tensors.update(
            {VALUE_PREFIX + k: v.detach().cpu().contiguous() for k, v in value.state_dict().items()}
        )
        metadata["value_config"] = value.config.to_json()
    payload = st_save(tensors, metadata=metadata)
    policy_id = policy_id_for(model.config, tensors, metadata)
    tmp = target.with_name(target.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)
    return policy_id


def policy_id_for(config: PolicyConfig, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> str:
    """``<name>-<12 hex digits>`` of the canonical content (see the module docstring)."""
    h = hashlib.sha256()
    h.update(json.dumps(metadata, sort_keys=True).encode())
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"\0{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return f"{config.name}-{h.hexdigest()[:12]}"


def _read_metadata(payload: bytes, where: str) -> dict[str, str]:
    """The ``__metadata__`` map of a safetensors payload (header: u64 length + JSON)."""
    if len(payload) < 8:
        raise CheckpointError(f"{where} is not a safetensors file (only {len(payload)} bytes)")
    (n,) = struct.unpack("<Q", payload[:8])
    if n > len(payload) - 8:
        raise CheckpointError(f"{where} is not a safetensors file (bad header length)")
    try:
        header = json.loads(payload[8 : 8 + n])
    except (UnicodeDecodeError, ValueError) as exc:
        raise CheckpointError(f"{where} is not a safetensors file (header is not JSON)") from exc
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{where} has no metadata: it is not a Takeover policy checkpoint")
    return {str(k): str(v) for k, v in meta.items()}


def load_checkpoint(path: str | os.PathLike[str]) -> tuple[ChunkMLP, str, dict[str, Any]]:
    """Read a checkpoint; return ``(model, policy_id, training record)``.

    Raises :class:`CheckpointError` with a readable reason for every kind of bad file.
    """
    model, _, policy_id, training = read_checkpoint(path)
    return model, policy_id, training


def read_checkpoint(path: str | os.PathLike[str]) -> tuple[ChunkMLP, ValueMLP | None, str, dict[str, Any]]:
    """Read a checkpoint; return ``(model, value model or None, policy_id, training record)``."""
    p = Path(path)
    where = f"policy checkpoint {p}"
    if not p.exists():
        raise CheckpointError(f"{where} does not exist")
    if not p.is_file():
        raise CheckpointError(f"{where} is not a file")
    size = p.stat().st_size
    if size > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"{where} is {size} bytes, more than the limit of {MAX_CHECKPOINT_BYTES}")
    payload = p.read_bytes()
    meta = _read_metadata(payload, where)
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{where} has format {meta.get('format')!r}, expected {FORMAT!r}")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{where} has format version {meta.get('format_version')!r}; this build reads {FORMAT_VERSION!r}"
        )
    try:
        config = PolicyConfig.from_json(meta["config"])
        training = json.loads(meta.get("training", "{}"))
        value_config = ValueConfig.from_json(meta["value_config"]) if "value_config" in meta else None
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{where} has an invalid config: {exc}") from exc
    try:
        tensors = st_load(payload)
    except Exception as exc:  # safetensors raises its own error type for corrupt payloads
        raise CheckpointError(f"{where} is corrupt: {exc}") from exc
    model = ChunkMLP(config)
    value = ValueMLP(value_config) if value_config is not None else None
    expected = dict(model.state_dict())
    if value is not None:
        expected.update({VALUE_PREFIX + k: v for k, v in value.state_dict().items()})
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{where} does not match its config: missing {missing}, unexpected {unexpected}"
        )
    for name, tensor in tensors.items():
        want = expected[name]
        if tensor.shape != want.shape or tensor.dtype != want.dtype:
            raise CheckpointError(
                f"{where}: tensor {name} is {tuple(tensor.shape)} {tensor.dtype}, "
                f"expected {tuple(want.shape)} {want.dtype}"
            )
        if tensor.dtype.is_floating_point and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"{where}: tensor {name} contains NaN or Inf")
    if tensors["feature_index"].tolist() != list(config.features):
        raise CheckpointError(f"{where}: feature indices do not match its config")
    if value is not None:
        if tensors[VALUE_PREFIX + "feature_index"].tolist() != list(value.config.features):
            raise CheckpointError(f"{where}: value feature indices do not match its value config")
        value.load_state_dict(
            {k[len(VALUE_PREFIX) :]: t for k, t in tensors.items() if k.startswith(VALUE_PREFIX)}
        )
        value.eval()
    model.load_state_dict({k: t for k, t in tensors.items() if not k.startswith(VALUE_PREFIX)}, strict=True)
    model.eval()
    policy_id = policy_id_for(config, tensors, meta)
    return model, value, policy_id, training if isinstance(training, dict) else {}


def load_policy(path: str | os.PathLike[str]) -> Policy:
    """Load a checkpoint as a :class:`~takeover.app.policy.model.Policy` ready for ``predict``
    (and ``value``, if the checkpoint holds a value model)."""
    model, value, policy_id, training = read_checkpoint(path)
    return Policy(model, policy_id, training, value)
