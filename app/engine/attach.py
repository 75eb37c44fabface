"""Attaching a console to an engine that runs in another process, here or on a robot computer.

A console knows one address, the engine's command endpoint (``takeover engine`` prints it). It
sends ATTACH there, naming itself; the :class:`AttachReply` says whether it now holds the engine,
which console does otherwise, where the status is published and how the engine is configured.
Qt-free: the command line asks before it opens a window. :func:`send_command` sends one command
from the command line (`takeover policy deploy`).
"""

from __future__ import annotations

import getpass
import os
import socket
from typing import Any

import zmq

from takeover.app.engine.protocol import AttachReply, Command, CommandName, CommandReply
from takeover.app.net import curve
from takeover.app.net.endpoints import Endpoint, EndpointError, parse_endpoint
from takeover.app.net.messages import RefusedError, decode_reply
from takeover.app.net.rpc import RequestChannel
from takeover.app.net.wire import WireError

WILDCARD_HOSTS = ("0.0.0.0", "*", "::")


class AttachError(RuntimeError):
    """The engine could not be reached or answered something else; the message says what to do."""


def viewer_name() -> str:
    """How this console names itself to the engine: ``user@host pid N``."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return f"{user}@{socket.gethostname()} pid {os.getpid()}"


def request_attach(
    command_endpoint: str, viewer: str, keys: curve.ClientKeys | None = None, timeout_s: float = 5.0
) -> AttachReply:
    """Send ATTACH to the engine at ``command_endpoint``; its reply, with the status endpoint made
    reachable from here (:func:`reachable`)."""
    ctx: zmq.Context[Any] = zmq.Context()
    req = ctx.socket(zmq.REQ)
    try:
        req.setsockopt(zmq.LINGER, 0)
        req.setsockopt(zmq.RCVTIMEO, int(timeout_s * 1000))
        req.setsockopt(zmq.SNDTIMEO, int(timeout_s * 1000))
        if keys is not None:
            curve.make_client(req, keys)
        req.connect(command_endpoint)
        req.send(Command(CommandName.ATTACH, viewer=viewer).encode())
        try:
            reply = decode_reply(req.recv(), AttachReply)
        except zmq.Again:
            raise AttachError(
                f"no engine answered at {command_endpoint} within {timeout_s:g} s: is `takeover engine` "
                "running there (it prints its command endpoint), and are the CURVE keys right?"
            ) from None
        except (RefusedError, WireError) as exc:
            raise AttachError(f"the engine at {command_endpoint} did not take ATTACH: {exc}") from None
    finally:
        req.close(0)
        ctx.term()
    try:
        status = reachable(reply.status, command_endpoint)
    except EndpointError as exc:
        raise AttachError(
            f"the engine at {command_endpoint} gave a status endpoint this console cannot use: {exc}"
        ) from None
    return AttachReply(reply.granted, reply.holder, status, reply.config)


def reachable(status_endpoint: str, command_endpoint: str) -> str:
    """The status endpoint as a console reaches it: an engine bound to every interface
    (``tcp://0.0.0.0:7001``) is reached at the host the command endpoint named."""
    status = parse_endpoint(status_endpoint, bind=True)
    if status.transport != "tcp" or status.host not in WILDCARD_HOSTS:
        return status_endpoint
    command = parse_endpoint(command_endpoint, bind=False)
    return str(Endpoint("tcp", host=command.host, port=status.port))


def send_command(
    command_endpoint: str, cmd: Command, keys: curve.ClientKeys | None = None, timeout_s: float = 5.0
) -> None:
    """Send one command to the engine at ``command_endpoint`` and wait for its answer;
    :class:`AttachError` with the engine's reason if it refused, or if nobody answered."""
    channel = RequestChannel(
        command_endpoint,
        timeout_s,
        keys,
        peer="engine",
        unavailable=AttachError,
        rejected=AttachError,
        timeout_message="no engine answered at {url} within {timeout:g} s: is it running (`takeover "
        "engine` and a console's Settings show its command endpoint), and are the CURVE keys right?",
        refused_message="the engine at {url} refused: {error}",
    )
    channel.connect()
    try:
        channel.request(cmd, CommandReply)
    finally:
        channel.close()
