"""The one codec (storage.codec), the envelope (app.net.wire) and typed messages (app.net.messages)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import msgpack
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from takeover.app.net import wire
from takeover.app.net.messages import MessageTable, RefusedError, Reply, Request, decode_reply
from takeover.storage import codec


def ext(fields: Any) -> bytes:
    """An array extension holding ``fields`` (valid or not) in place of [dtype, shape, data]."""
    return msgpack.packb(msgpack.ExtType(codec.ARRAY_EXT, msgpack.packb(fields)))


@pytest.mark.parametrize("dtype", ["<f4", "<f8", ">f4", "|u1", "<i8", "|b1", "<u2", "<f2"])
def test_arrays_round_trip_bit_exact(dtype: str) -> None:
    arr = (np.arange(24).reshape(2, 3, 4) % 2).astype(dtype)
    out = codec.unpack(codec.pack({"a": arr, "empty": np.zeros((0, 3), dtype)}))
    assert out["a"].dtype == arr.dtype and out["a"].shape == arr.shape
    np.testing.assert_array_equal(out["a"], arr)
    assert out["empty"].shape == (0, 3)


def test_values_round_trip_and_numpy_scalars_become_python_numbers() -> None:
    value = {
        "n": None,
        "b": True,
        "i": -(2**63),
        "u": 2**64 - 1,
        "f": 0.5,
        "s": "é",
        "y": b"\x00",
        "l": [1, [2]],
    }
    assert codec.unpack(codec.pack(value)) == value
    assert codec.unpack(codec.pack([np.float32(1.5), np.int64(3), (1, 2)])) == [1.5, 3, [1, 2]]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (ext(["<f4", "4", b"\0" * 16]), "shape must be a list of at most 32 non-negative integers, got '4'"),
        (ext(["<f4", [4.0], b"\0" * 16]), r"got \[4\.0\]"),
        (ext(["<f4", [4.9], b"\0" * 16]), r"got \[4\.9\]"),
        (ext(["<f4", {"4": 0}, b"\0" * 16]), r"got \{'4': 0\}"),
        (ext(["<f4", [True], b"\0" * 4]), r"got \[True\]"),
        (ext(["<f4", [-1], b""]), r"got \[-1\]"),
        (ext(["<f4", [0] * 33, b""]), "at most 32"),
        (ext(["<f4", [4], b"\0" * 16, "more"]), r"must be \[dtype, shape, data\]"),
        (ext({"dtype": "<f4", "shape": [4], "data": b"\0" * 16}), r"must be \[dtype, shape, data\]"),
        (ext(["<f4", [4], "\0" * 16]), "data must be bytes, got a string"),
        (ext([4, [4], b"\0" * 16]), "dtype must be a string"),
        (ext(["float32", [1], b"\0" * 4]), "dtype must be written '<f4'"),
        (ext(["|O", [1], b"\0" * 8]), "'|O' is not allowed"),
        (ext(["<U3", [1], b"\0" * 12]), "is not allowed"),
        (ext(["<M8[s]", [1], b"\0" * 8]), "is not allowed"),
        (ext(["(2,)<f4", [1], b"\0" * 8]), "is not allowed"),
        (ext(["bogus", [1], b"\0"]), "'bogus' is not a numpy dtype"),
        (ext(["x" * 10_000, [1], b"\0"]), r"\(10000 characters\) is not a numpy dtype"),
        (ext(["<f4", [3], b"1234"]), r"shape \(3,\) and dtype <f4 needs 12 bytes, got 4"),
        (ext(["<f4", [2**62, 2**62], b""]), "needs .* bytes, got 0"),
        (msgpack.packb(msgpack.ExtType(codec.ARRAY_EXT, b"\xc1")), "header is not readable"),
        (msgpack.packb(msgpack.ExtType(5, b"x")), "unknown extension type 5"),
        (msgpack.packb(msgpack.Timestamp(1, 0)), "timestamps are not part of this codec"),
        (msgpack.packb({1: 2}), "map keys must be strings, got an integer 1"),
        (b"\x82\xa1a\x01\xa1a\x02", "map key 'a' appears twice"),
        (b"\x91" * 70 + b"\xc0", "nested more than 64 levels"),
        (b"\x91" * 5000 + b"\xc0", "nested too deeply"),
        (codec.pack({"a": 1})[:-1], "truncated"),
        (codec.pack(1) + b"\x00", "1 extra byte"),
        (b"\xc1", "not msgpack"),
        (b"\xa2\xff\xfe", "not valid UTF-8"),
        (b"\xdd\xff\xff\xff\xff", "claims more than the bytes hold"),
        (msgpack.packb({"__nd__": ["<f4", [1], b"\0" * 4]}), None),  # only the log reader takes this
    ],
)
def test_decoding_is_strict_and_says_what_is_wrong(payload: bytes, reason: str | None) -> None:
    if reason is None:
        assert isinstance(codec.unpack(payload)["__nd__"], list)  # a plain map, not an array
        return
    with pytest.raises(codec.CodecError, match=reason) as info:
        codec.unpack(payload)
    text = str(info.value)
    assert len(text) < 250
    for library_wording in ("strict_map_key", "StackError", "KeyError", "ExtraData", "Unpack failed"):
        assert library_wording not in text


def test_object_and_structured_arrays_are_refused_when_encoding() -> None:
    for arr in (np.array([object()]), np.zeros(2, dtype="i4,f4"), np.array(["abc"])):
        with pytest.raises(TypeError, match="cannot encode an array of dtype"):
            codec.pack({"a": arr})
    with pytest.raises(TypeError, match="cannot encode set"):
        codec.pack({1, 2})


def test_log_records_in_the_form_written_before_the_one_codec_still_read() -> None:
    old = msgpack.packb({"s": {"__nd__": ["<f4", [2], np.array([1, 2], "<f4").tobytes()]}, "i": 3})
    out = codec.unpack_log(old)
    np.testing.assert_array_equal(out["s"], np.array([1, 2], np.float32))
    assert out["i"] == 3
    # and what is written now, too
    np.testing.assert_array_equal(codec.unpack_log(codec.pack({"s": np.ones(2)}))["s"], np.ones(2))
    with pytest.raises(codec.CodecError, match="shape must be"):
        codec.unpack_log(msgpack.packb({"__nd__": ["<f4", ["2"], b"\0" * 8]}))


@given(st.binary(max_size=256))
def test_arbitrary_bytes_never_escape_as_anything_but_codec_error(payload: bytes) -> None:
    try:
        codec.unpack(payload)
    except codec.CodecError as exc:
        assert 0 < len(str(exc)) < 250


# -- the envelope -----------------------------------------------------------------------------------


def test_version_and_type_are_checked() -> None:
    with pytest.raises(wire.WireError, match="wire version 99 is not supported"):
        wire.decode(msgpack.packb({"v": 99, "type": "x"}))
    for fake_two in (True, 2.0):  # equal to 2 in Python, but not the version number 2
        with pytest.raises(wire.WireError, match="version"):
            wire.decode(msgpack.packb({"v": fake_two, "type": "x"}))
    with pytest.raises(wire.WireError, match="needs a 'type' string, got nil"):
        wire.decode(msgpack.packb({"v": 2}))
    with pytest.raises(wire.WireError, match="expected a 'infer' message, got 'health'"):
        wire.decode(wire.encode({"type": "health"}), expect_type="infer")
    with pytest.raises(wire.WireError, match="exceeds the limit of 10"):
        wire.decode(b"\x00" * 11, max_bytes=10)


def test_error_replies_are_capped() -> None:
    reply = wire.decode(wire.error_reply("x" * 10_000))
    assert reply["ok"] is False and len(reply["error"]) <= wire.MAX_ERROR_CHARS
    assert reply["error"].endswith("(10000 characters)")
    assert wire.error_reason(reply) == reply["error"]
    with pytest.raises(wire.WireError, match="malformed error reply"):
        wire.error_reason(wire.decode(wire.encode({"type": "error", "ok": False})))


# -- typed messages ---------------------------------------------------------------------------------


class Color(enum.StrEnum):
    RED = "red"


@dataclass(frozen=True)
class Inner:
    name: str
    box: tuple[float, float, float] | None = None


@dataclass(frozen=True)
class Probe(Request):
    TYPE: ClassVar[str] = "probe"
    count: int
    ratio: float
    color: Color
    mode: Literal["a", "b"]
    inner: Inner
    names: tuple[str, ...]
    arrays: dict[str, np.ndarray]
    maybe: np.ndarray | None = None
    tags: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.count < 0:
            raise ValueError("'count' must not be negative")


@dataclass(frozen=True)
class Pong(Reply):
    TYPE: ClassVar[str] = "pong"
    n: int


PROBE = Probe(3, 0.5, Color.RED, "a", Inner("x", (1.0, 2.0, 3.0)), ("p", "q"), {"z": np.zeros(2, np.float32)})


def test_a_typed_message_round_trips() -> None:
    out = Probe.decode(PROBE.encode())
    assert out.inner == PROBE.inner and out.names == ("p", "q") and out.color is Color.RED
    np.testing.assert_array_equal(out.arrays["z"], PROBE.arrays["z"])
    assert out.maybe is None and out.tags == {}
    body = PROBE.body()
    del body["tags"], body["maybe"]  # fields with a default may be left out
    assert Probe.decode(wire.encode(body)).tags == {}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"count": 3.0}, "'count' must be an integer, got a float 3.0"),
        ({"count": True}, "'count' must be an integer, got a bool True"),
        ({"count": "3"}, "'count' must be an integer, got a string '3'"),
        ({"count": -1}, "'count' must not be negative"),
        ({"ratio": 1}, "'ratio' must be a float, got an integer 1"),
        ({"color": "blue"}, r"'color' must be one of \['red'\]"),
        ({"mode": "c"}, r"'mode' must be one of \['a', 'b'\]"),
        ({"inner": {"name": "x", "extra": 1}}, r"unexpected field\(s\) 'extra' in inner"),
        ({"inner": {}}, r"missing field\(s\) 'inner.name'"),
        ({"inner": {"name": "x", "box": [1.0, 2.0]}}, r"'inner.box' must be nil or a list of 3, got 2 items"),
        ({"inner": {"name": "x", "box": [1.0, 2.0, 3]}}, r"'inner.box\[2\]' must be a float"),
        ({"names": "pq"}, "'names' must be a list, got a string"),
        ({"names": ["p", 1]}, r"'names\[1\]' must be a string, got an integer 1"),
        ({"arrays": {"z": [0.0, 0.0]}}, r"'arrays\['z'\]' must be an array, got a list"),
        ({"arrays": []}, "'arrays' must be a map, got a list"),
        ({"maybe": 0}, "'maybe' must be nil or an array, got an integer 0"),
        ({"tags": {"t": 1}}, r"'tags\['t'\]' must be a float"),
        ({"speed": 1}, r"unexpected field\(s\) 'speed' in the message"),
        ({"ok": True}, "a 'probe' request carries no 'ok'"),
    ],
)
def test_a_typed_message_takes_exact_types_and_keys(change: dict[str, Any], reason: str) -> None:
    with pytest.raises(wire.WireError, match=reason):
        Probe.decode(wire.encode({**PROBE.body(), **change}))


def test_a_missing_field_is_named() -> None:
    body = PROBE.body()
    del body["count"], body["names"]
    with pytest.raises(wire.WireError, match=r"missing field\(s\) 'count', 'names'"):
        Probe.decode(wire.encode(body))


def test_tables_dispatch_on_type_and_replies_carry_ok() -> None:
    table = MessageTable[Request]([Probe])
    probe = table.decode(PROBE.encode())
    assert isinstance(probe, Probe) and probe.inner == PROBE.inner
    with pytest.raises(wire.WireError, match=r"unknown message type 'nope'; expected one of \['probe'\]"):
        table.decode(wire.encode({"type": "nope"}))
    with pytest.raises(ValueError, match="two message types"):
        table.extended(Probe)
    assert decode_reply(Pong(4).encode(), Pong) == Pong(4)
    with pytest.raises(RefusedError, match="no such thing"):
        decode_reply(wire.error_reply("no such thing"), Pong)
    with pytest.raises(wire.WireError, match="must carry ok: true"):
        decode_reply(wire.encode({"type": "pong", "n": 4}), Pong)
