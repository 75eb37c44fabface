"""A fake engine speaking the real protocol over real ZeroMQ sockets, in-process or as a child.

The fake sits at the wire seam: a PUB socket publishing encoded :class:`Status` messages and a
REP socket answering :class:`Command` messages (and recording them). Everything above the wire
(the link, its threads, the window) is the real code.

Run as a script (``python fake_engine.py --parent-fd N``, through
:func:`takeover.app.net.children.start_child`) it is a separate process that can be stopped with
SIGSTOP like a stalled engine: it reports its endpoints to its parent, echoes every command it
carries out in the status message, and exits when its parent goes.
"""

from __future__ import annotations

import argparse
import threading
import time
from dataclasses import replace
from typing import Any

import numpy as np
import zmq

from takeover.app.engine.protocol import AttachReply, Command, CommandName, Status
from takeover.app.net import wire
from takeover.app.net.children import PARENT_FD_OPTION, ParentLink

PUBLISH_PERIOD_S = 0.02


def sample_frame(height: int = 240, width: int = 320) -> np.ndarray:
    """A synthetic tabletop scene (floor, table, red cube, grey gripper), RGB uint8."""
    rows = np.linspace(0.0, 1.0, height)[:, None, None]
    frame = (np.array([70, 80, 95]) * (0.6 + 0.4 * rows)).astype(np.uint8) * np.ones((1, width, 1), np.uint8)
    table_top = height * 2 // 5
    frame[table_top:, :] = (np.array([150, 115, 80]) * (0.8 + 0.2 * rows[table_top:])).astype(np.uint8)
    frame[table_top : table_top + 3, :] = (110, 80, 55)
    cube_y, cube_x, size = height * 3 // 5, width * 3 // 5, height // 8
    frame[cube_y + size : cube_y + size + 4, cube_x + 3 : cube_x + size + 6] = (95, 70, 50)  # shadow
    frame[cube_y : cube_y + size, cube_x : cube_x + size] = (200, 40, 40)
    frame[cube_y : cube_y + 3, cube_x : cube_x + size] = (235, 90, 90)
    arm_x = width * 2 // 5
    frame[: height // 3, arm_x - 6 : arm_x + 6] = (185, 185, 190)
    frame[height // 3 : height // 3 + 8, arm_x - 22 : arm_x + 22] = (160, 160, 168)
    for finger_x in (arm_x - 22, arm_x + 16):
        frame[height // 3 + 8 : height // 3 + 30, finger_x : finger_x + 6] = (140, 140, 150)
    return np.ascontiguousarray(frame)


def make_status(**overrides: Any) -> Status:
    """A plausible status of a running autonomous attempt; override any field."""
    base = Status(
        t=time.monotonic(),
        mode="AUTONOMOUS",
        episode_active=True,
        episode_id="ep-0007",
        step=142,
        episodes_done=6,
        success=False,
        message="",
        camera="front",
        image=sample_frame(),
        timing={"period_ms": 20.0, "loop_ms": 3.4, "overruns": 0.0},
        readiness="ready",
    )
    return replace(base, **overrides)


class FakeEngine:
    """Publishes the current status continuously and answers commands with ``ok``.

    ``silent`` stops publishing (the engine froze); ``reply_delay_s`` delays every answer (the
    engine is busy). ``commands`` lists every decoded command received, in order.
    """

    def __init__(self, echo: bool = False) -> None:
        self.status = make_status()
        self.silent = False
        self.reply_delay_s = 0.0
        self.echo = echo
        self.refuse = ""
        """When set, every command is refused with this reason (as the engine refuses an impossible one)."""
        """Put 'engine carried out <name> (#n)' in the status message after every command."""
        self.status_endpoint = ""
        self.command_endpoint = ""
        self._commands: list[Command] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._context: zmq.Context[Any] | None = None

    @property
    def commands(self) -> list[Command]:
        with self._lock:
            return list(self._commands)

    def names(self) -> list[CommandName]:
        return [c.name for c in self.commands]

    def clear(self) -> None:
        with self._lock:
            self._commands.clear()

    def start(self) -> None:
        self._context = zmq.Context()
        pub = self._context.socket(zmq.PUB)
        pub.setsockopt(zmq.LINGER, 0)
        pub.bind("tcp://127.0.0.1:*")
        self.status_endpoint = pub.getsockopt_string(zmq.LAST_ENDPOINT)
        rep = self._context.socket(zmq.REP)
        rep.setsockopt(zmq.LINGER, 0)
        rep.bind("tcp://127.0.0.1:*")
        self.command_endpoint = rep.getsockopt_string(zmq.LAST_ENDPOINT)
        self._threads = [
            threading.Thread(target=self._publish, args=(pub,), name="fake-engine-pub", daemon=True),
            threading.Thread(target=self._answer, args=(rep,), name="fake-engine-rep", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=2.0)
        if self._context is not None:
            self._context.term()
            self._context = None

    def _publish(self, pub: zmq.Socket[bytes]) -> None:
        try:
            while not self._stop.wait(PUBLISH_PERIOD_S):
                if not self.silent:
                    pub.send(replace(self.status, t=time.monotonic()).encode())
        finally:
            pub.close(linger=0)

    def _answer(self, rep: zmq.Socket[bytes]) -> None:
        try:
            while not self._stop.is_set():
                if not rep.poll(20):
                    continue
                payload = rep.recv()
                try:
                    command = Command.decode(payload)
                except wire.WireError as exc:
                    rep.send(wire.error_reply(str(exc)))
                    continue
                with self._lock:
                    self._commands.append(command)
                    count = len(self._commands)
                if command.name is CommandName.ATTACH:  # a console claims it: granted, as the engine does
                    rep.send(AttachReply(True, command.viewer, self.status_endpoint).encode())
                    continue
                if self.echo:
                    self.status = replace(
                        self.status, message=f"engine carried out {command.name.value} (#{count})"
                    )
                if self.reply_delay_s:
                    time.sleep(self.reply_delay_s)
                refusal = self.refuse
                rep.send(wire.encode({"type": "reply", "ok": not refusal, "error": refusal}))
        finally:
            rep.close(linger=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(PARENT_FD_OPTION, type=int, required=True)
    args = parser.parse_args()
    parent = ParentLink.adopt(args.parent_fd, grace_s=2.0)
    peer = FakeEngine(echo=True)
    done = threading.Event()
    parent.on_gone(done.set)
    peer.start()
    parent.report(status=peer.status_endpoint, command=peer.command_endpoint)
    done.wait()
    peer.close()


if __name__ == "__main__":
    main()
