"""Camera frames on the engine's frame socket reach real camera views, which count the distinct
frame numbers they paint and show NO SIGNAL when frames stop."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest
import zmq
from PyQt6.QtWidgets import QApplication, QHBoxLayout, QWidget

from takeover.app.engine.protocol import Frame
from takeover.app.gui.console.camera_view import NO_SIGNAL_TEXT, CameraView, CameraWall
from takeover.app.gui.console.frame_thread import FrameThread
from takeover.app.net import wire

from .conftest import sample_frame

pytestmark = pytest.mark.gui


def test_frame_message_round_trips_and_refuses_a_bad_image() -> None:
    image = sample_frame(48, 64)
    back = Frame.decode(Frame("corner", 7, 12.5, image).encode())
    assert (back.camera, back.seq, back.t) == ("corner", 7, 12.5)
    np.testing.assert_array_equal(back.image, image)
    body = wire.decode(Frame("corner", 7, 12.5, image).encode())
    body["image"] = "pixels"
    with pytest.raises(wire.WireError, match="image"):
        Frame.decode(wire.encode(body))


def test_view_counts_distinct_frames_painted_not_repaints(qtbot: Any) -> None:
    view = CameraView(max_age_s=0.5)
    qtbot.addWidget(view)
    view.show()
    image = sample_frame(48, 64)
    start = time.monotonic()
    seq = 0
    while time.monotonic() - start < 1.2:  # 40 updates a second, every number sent twice: 20 distinct/s
        seq += 1
        for _ in range(2):
            view.set_frame(image, seq // 2 + 1)
            view.repaint()  # paint now, as an idle event loop would
            qtbot.wait(12)
    rate = view.painted_fps()
    assert 0 < rate <= 25, rate
    distinct = seq // 2 + 1
    assert rate * 2.0 <= distinct + 1  # never more numbers counted than were shown
    view.set_frame(image, view.seq)  # the same frame again: not a new one
    qtbot.waitUntil(lambda: view.stale and view.text() == NO_SIGNAL_TEXT, timeout=2000)
    assert view.frame_size is None


def test_frames_from_two_cameras_reach_a_wall_of_views_over_a_real_socket(qtbot: Any) -> None:
    ctx: zmq.Context[Any] = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    port = pub.bind_to_random_port("tcp://127.0.0.1")
    stop = threading.Event()
    shown: dict[str, list[int]] = {"corner": [], "gripperPOV": []}

    def publish() -> None:
        seq = 0
        while not stop.is_set():
            seq += 1
            for name in shown:
                pub.send(Frame(name, seq, time.monotonic(), sample_frame(168, 224)).encode())
            time.sleep(1 / 30)

    holder = QWidget()
    row = QHBoxLayout(holder)
    wall = CameraWall(CameraView(), lambda _name, view: row.addWidget(view, 1))
    qtbot.addWidget(holder)
    holder.resize(900, 340)
    holder.show()

    def on_frame(frame: Frame) -> None:
        view = wall.show_frame(frame.camera, frame.image, frame.seq)
        shown[frame.camera].append(view.seq)

    thread = FrameThread(ctx, f"tcp://127.0.0.1:{port}")
    thread.received.connect(on_frame)
    thread.start()
    sender = threading.Thread(target=publish, daemon=True)
    sender.start()
    try:
        qtbot.waitUntil(lambda: all(len(v) > 20 for v in shown.values()), timeout=8000)
        QApplication.processEvents()
        assert set(wall.views) == {"corner", "gripperPOV"}
        assert wall.primary in wall.views.values()
        for name, seqs in shown.items():
            assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), name  # newest only, in order
        qtbot.waitUntil(lambda: min(wall.painted_fps().values()) >= 10, timeout=5000)
    finally:
        stop.set()
        sender.join(timeout=2)
        thread.request_stop()
        thread.wait(2000)
        pub.close(0)
        ctx.term()
    for view in wall.views.values():  # frames stopped: NO SIGNAL, never the last picture
        qtbot.waitUntil(lambda v=view: v.stale, timeout=3000)


def test_the_wall_shows_the_station_cameras_in_their_configured_order(qtbot: Any) -> None:
    holder = QWidget()
    row = QHBoxLayout(holder)
    placed: list[str] = []

    def place(name: str, view: CameraView) -> None:
        placed.append(name)
        row.addWidget(view, 1)

    wall = CameraWall(CameraView(), place)
    qtbot.addWidget(holder)
    holder.show()
    wall.expect(("corner", "gripperPOV"))
    wall.expect(("corner", "gripperPOV"))  # every status says it again: nothing new is made
    assert placed == ["corner", "gripperPOV"] and wall.views["corner"] is wall.primary
    assert all(view.stale for view in wall.views.values())  # NO SIGNAL until a frame comes
    view = wall.show_frame("gripperPOV", sample_frame(168, 224), 1)  # the second camera's frame first
    assert view is wall.views["gripperPOV"] and not view.stale and wall.views["corner"].stale
    assert placed == ["corner", "gripperPOV"]
