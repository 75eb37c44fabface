"""The policy: model, checkpoints, the ZeroMQ server that serves it and the client the loop uses.

Importing this package does not import torch; the submodules that need it do.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_CHECKPOINT_NAME = "pick-place-mlp.safetensors"


def default_checkpoint_path() -> Path:
    """The checkpoint shipped with the app (under ``assets/policy/``; it may not exist yet)."""
    return Path(__file__).resolve().parent.parent / "assets" / "policy" / DEFAULT_CHECKPOINT_NAME
