"""Fuzz the engine's command socket at its decode path: every wrong command is a WireError.

The engine answers a WireError with an error reply and keeps serving; any other exception would
end its command thread, so the decode path must raise nothing else.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from takeover.app.engine.protocol import Command, CommandName
from takeover.app.net.wire import WireError, encode

NAMES = {n.value for n in CommandName}


def _is(values: set[str] | tuple[str, ...]) -> Any:
    return lambda v: isinstance(v, str) and v in values


def command_schema(fz: SimpleNamespace) -> Any:
    return fz.Schema(
        valid=(
            {"type": "command", "name": "takeover", "outcome": "", "keys": []},
            {"type": "command", "name": "stop_episode", "outcome": "success", "keys": []},
            {"type": "command", "name": "keys", "outcome": "", "keys": ["w", "space"]},
        ),
        bad_fields={
            "name": st.one_of(fz.values, fz.any_arrays).filter(lambda v: not _is(NAMES)(v)),
            "outcome": fz.values.filter(lambda v: not _is(("", "success", "failure"))(v)),
            "keys": fz.values.filter(lambda v: not _valid_keys(v)),
        },
        required=frozenset({"name"}),
    )


def _valid_keys(v: Any) -> bool:
    return isinstance(v, list) and len(v) <= 16 and all(isinstance(k, str) and 0 < len(k) <= 32 for k in v)


def test_engine_command_decode(fz: SimpleNamespace) -> None:
    fuzzed = 0

    @settings(fz.FUZZ, max_examples=fz.MIN_CASES["engine/command-decode"])
    @given(frames=fz.bad_requests(command_schema(fz), multipart=False))
    def run(frames: list[bytes]) -> None:
        nonlocal fuzzed
        fuzzed += 1
        try:
            Command.decode(frames[0])
        except WireError as exc:
            assert len(str(exc)) > 5
        else:
            raise AssertionError(f"accepted a wrong command: {frames[0]!r}")

    run()
    assert fuzzed >= fz.MIN_CASES["engine/command-decode"]


def test_engine_command_decode_array_outcome() -> None:
    with pytest.raises(WireError):
        Command.decode(encode({"type": "command", "name": "hold", "outcome": np.zeros(2)}))
