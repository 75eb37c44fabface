"""Endpoint strings are checked before libzmq sees them: exact forms, one short sentence otherwise."""

from __future__ import annotations

import pytest
import zmq

from takeover.app.net.endpoints import Endpoint, EndpointError, check_endpoint, parse_endpoint


@pytest.mark.parametrize(
    ("text", "bind", "expected"),
    [
        ("tcp://127.0.0.1:5555", False, Endpoint("tcp", "127.0.0.1", 5555)),
        ("tcp://robot-pc.lab:65535", False, Endpoint("tcp", "robot-pc.lab", 65535)),
        ("tcp://[::1]:1", False, Endpoint("tcp", "::1", 1)),
        ("tcp://127.0.0.1:0", True, Endpoint("tcp", "127.0.0.1", None)),
        ("tcp://127.0.0.1:*", True, Endpoint("tcp", "127.0.0.1", None)),
        ("tcp://*:5556", True, Endpoint("tcp", "*", 5556)),
        ("ipc:///tmp/takeover/engine.sock", False, Endpoint("ipc", path="/tmp/takeover/engine.sock")),
        ("ipc://@takeover-engine", True, Endpoint("ipc", path="@takeover-engine")),
    ],
)
def test_the_forms_a_person_may_write(text: str, bind: bool, expected: Endpoint) -> None:
    assert parse_endpoint(text, bind=bind) == expected
    assert check_endpoint(text, bind=bind) == text
    assert str(expected) == text.replace(":0", ":*") if bind else str(expected) == text


@pytest.mark.parametrize(
    ("text", "bind", "message"),
    [
        ("", True, "the endpoint is empty: give tcp://HOST:PORT or ipc://PATH"),
        ("   ", False, "the endpoint is empty"),
        (
            "tcp://127.0.0.1:99999",
            True,
            "port 99999 is out of range: use 1..65535, or 0 or * for any free port",
        ),
        ("tcp://127.0.0.1:65536", False, "port 65536 is out of range: use 1..65535"),
        ("tcp://127.0.0.1:0", False, "port 0 is out of range: use 1..65535"),
        ("tcp://127.0.0.1:*", False, "the port must be a number 1..65535"),
        ("tcp://127.0.0.1:-1", False, "the port must be a number"),
        ("tcp://127.0.0.1:５５５５", False, "the port must be a number"),
        ("tcp://127.0.0.1", False, "needs a host and a port"),
        ("tcp://:5555", False, "needs a host and a port"),
        ("tcp://*:5555", False, "'*' binds every interface; to connect, name a host"),
        ("tcp://300.1.1.1:5555", False, "'300.1.1.1' is not an IPv4 address"),
        ("tcp://::1:5555", False, "write an IPv6 address in brackets"),
        ("tcp://[::g]:5555", False, "is not an IPv6 address"),
        ("tcp://under_score:5555", False, "'under_score' is not a valid host name"),
        ("tcp:// 127.0.0.1:5555", False, "contains spaces or control characters"),
        ("localhost:5555", False, "must look like tcp://HOST:PORT or ipc://PATH"),
        ("udp://127.0.0.1:5555", False, "must look like"),
        ("inproc://x", True, "must look like"),
        ("ipc://", True, "names no path"),
        ("ipc:///" + "d" * 107, True, "an ipc path may be at most 107 bytes (this one is 108)"),
    ],
)
def test_everything_else_is_one_sentence_saying_what_to_write(text: str, bind: bool, message: str) -> None:
    with pytest.raises(EndpointError) as exc:
        parse_endpoint(text, bind=bind)
    assert message in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize("text", ["tcp://" + "h" * 10_000 + ":1", "tcp://h:" + "9" * 10_000, "x" * 10_000])
def test_long_input_is_not_echoed_whole(text: str) -> None:
    with pytest.raises(EndpointError) as exc:
        parse_endpoint(text, bind=False)
    assert len(str(exc.value)) < 600


def test_inproc_where_allowed_and_a_checked_endpoint_binds_where_it_says() -> None:
    assert parse_endpoint("inproc://loop", bind=True, allow_inproc=True) == Endpoint("inproc", path="loop")
    ctx = zmq.Context.instance()
    sock = ctx.socket(zmq.REP)
    try:
        sock.bind(check_endpoint("tcp://127.0.0.1:*", bind=True))
        got = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        port = parse_endpoint(got, bind=False).port
        assert port is not None and 1 <= port <= 65535
    finally:
        sock.close(linger=0)
