import msgpack
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from takeover.app.net import wire


@pytest.mark.parametrize("dtype", ["<f4", "<f8", "|u1", "<i8", "|b1"])
def test_arrays_round_trip_bit_exact(dtype: str) -> None:
    arr = (np.arange(24).reshape(2, 3, 4) % 2).astype(dtype)
    out = wire.decode(wire.encode({"type": "x", "a": arr}))["a"]
    assert out.dtype == arr.dtype and out.shape == arr.shape
    np.testing.assert_array_equal(out, arr)


def test_object_arrays_are_refused_on_both_sides() -> None:
    with pytest.raises(TypeError, match="dtype"):
        wire.encode({"type": "x", "a": np.array([object()])})
    payload = msgpack.packb(
        {"v": 1, "type": "x", "a": {"__nd__": True, "dtype": "|O", "shape": [1], "data": b"x"}}
    )
    with pytest.raises(wire.WireError, match="not allowed"):
        wire.decode(payload)


def test_size_mismatch_is_refused() -> None:
    payload = msgpack.packb(
        {"v": 1, "type": "x", "a": {"__nd__": True, "dtype": "<f4", "shape": [3], "data": b"1234"}}
    )
    with pytest.raises(wire.WireError, match="does not match"):
        wire.decode(payload)


def test_version_and_type_are_checked() -> None:
    with pytest.raises(wire.WireError, match="version"):
        wire.decode(msgpack.packb({"v": 99, "type": "x"}))
    for fake_one in (True, 1.0):  # equal to 1 in Python, but not the version number 1
        with pytest.raises(wire.WireError, match="version"):
            wire.decode(msgpack.packb({"v": fake_one, "type": "x"}))
    with pytest.raises(wire.WireError, match="no 'type'"):
        wire.decode(msgpack.packb({"v": 1}))
    with pytest.raises(wire.WireError, match="expected a 'infer'"):
        wire.decode(wire.encode({"type": "health"}), expect_type="infer")


@given(st.binary(max_size=256))
def test_arbitrary_bytes_never_escape_as_anything_but_wire_error(payload: bytes) -> None:
    try:
        msg = wire.decode(payload)
    except wire.WireError:
        return
    assert isinstance(msg, dict) and msg["v"] == wire.WIRE_VERSION
