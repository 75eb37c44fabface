"""Fuzz the engine's command socket at its decode path: every wrong command is a WireError.

The engine answers a WireError with an error reply and keeps serving; any other exception would
end its command thread, so the decode path must raise nothing else.
"""

from __future__ import annotations

import collections
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from takeover.app.engine.protocol import Command, CommandName
from takeover.app.net.wire import WireError, encode

ENGINE_CASES = 350
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
            "keys": fz.values.filter(
                lambda v: not (isinstance(v, list) and all(isinstance(k, str) for k in v))
            ),
        },
        required=frozenset({"name"}),
        strict=False,
    )


def test_engine_command_decode(fz: SimpleNamespace, cases: collections.Counter[str]) -> None:
    @settings(fz.FUZZ, max_examples=ENGINE_CASES)
    @given(frames=fz.bad_requests(command_schema(fz), multipart=False))
    def run(frames: list[bytes]) -> None:
        cases["engine/command-decode"] += 1
        try:
            Command.decode(frames[0])
        except WireError as exc:
            assert len(str(exc)) > 5
        else:
            raise AssertionError(f"accepted a wrong command: {frames[0]!r}")

    run()
    assert cases["engine/command-decode"] >= ENGINE_CASES


def test_engine_command_decode_array_outcome() -> None:
    with pytest.raises(WireError):
        Command.decode(encode({"type": "command", "name": "hold", "outcome": np.zeros(2)}))
