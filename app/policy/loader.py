"""Policy loaders: turn a checkpoint path or a Python entry point into something the server serves.

``load_policy_from(spec)`` accepts:

- a path to a Takeover checkpoint (``*.safetensors``; see :mod:`takeover.app.policy.checkpoint`);
- an entry point ``"package.module:factory"``: the module is imported and ``factory()`` is called
  with no arguments; it must return an object with a ``policy_id`` string and a
  ``predict(state) -> (H, A) array | PolicyOutput`` method (any torch model can be wrapped so).

An entry point runs code from an installed module, never from a data file: checkpoints are
loaded without pickle.
"""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path
from typing import Any

from takeover.app.policy.server import Predictor

_ENTRY_POINT = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class PolicyLoadError(ValueError):
    """A policy spec that cannot be loaded; the message says why."""


def is_entry_point(spec: str) -> bool:
    """True for ``package.module:factory`` (and not for an existing file that happens to look so)."""
    return bool(_ENTRY_POINT.match(spec)) and not Path(spec).exists()


def load_policy_from(spec: str | os.PathLike[str]) -> Predictor:
    """Load a policy from a checkpoint path or a ``module:factory`` entry point."""
    text = os.fspath(spec)
    if not text:
        raise PolicyLoadError("empty policy spec: give a checkpoint path or 'package.module:factory'")
    if is_entry_point(text):
        return _from_entry_point(text)
    from takeover.app.policy.checkpoint import CheckpointError, load_policy

    try:
        return load_policy(text)
    except CheckpointError as exc:
        raise PolicyLoadError(str(exc)) from exc


def _from_entry_point(spec: str) -> Predictor:
    module_name, attr = spec.split(":", 1)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PolicyLoadError(f"policy entry point {spec!r}: cannot import {module_name}: {exc}") from exc
    factory: Any = getattr(module, attr, None)
    if not callable(factory):
        raise PolicyLoadError(f"policy entry point {spec!r}: {module_name} has no callable {attr!r}")
    try:
        policy = factory()
    except Exception as exc:
        raise PolicyLoadError(f"policy entry point {spec!r} failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(getattr(policy, "policy_id", None), str) or not callable(
        getattr(policy, "predict", None)
    ):
        raise PolicyLoadError(
            f"policy entry point {spec!r} returned {type(policy).__name__}, which has no "
            "'policy_id' string and 'predict(state)' method"
        )
    result: Predictor = policy
    return result
