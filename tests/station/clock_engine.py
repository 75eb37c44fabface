"""An engine for the station clock crash test, run as its own process until it is killed.

    python clock_engine.py STATION_URL STORE EPISODE_ID

One long attempt against the station server at STATION_URL, recorded into STORE with a
free-running camera on this computer. Prints ``S <index> <t>`` for every step handed to the
recorder (``t`` on this computer's monotonic clock, shared by every process of the machine), and
``E <message>`` if it fails.
"""

from __future__ import annotations

import sys

from takeover.app.control.loop import ControlLoop, LoopConfig
from takeover.app.station.remote import RemoteStation
from takeover.recorder.cameras import SyntheticCamera, SyntheticCameraConfig
from takeover.recorder.capture import CameraCapture
from takeover.recorder.recorder import EpisodeRecorder
from takeover.recorder.records import EpisodeEnd, EpisodeStart, StepRecord
from takeover.storage.schema import Event
from takeover.storage.store import Store


class Report:
    """Says on stdout what was handed to the recorder, as it is."""

    def on_episode_start(self, start: EpisodeStart) -> None:
        pass

    def on_step(self, step: StepRecord) -> None:
        print(f"S {step.index} {step.t!r}", flush=True)

    def on_event(self, event: Event) -> None:
        pass

    def on_episode_end(self, end: EpisodeEnd) -> None:
        pass


def main(url: str, store_root: str, episode_id: str) -> None:
    camera = SyntheticCamera(SyntheticCameraConfig(name="engine", width=64, height=48, fps=60.0))
    with Store.open_or_create(store_root) as store, RemoteStation(url, timeout_s=5.0) as remote:
        recorder = EpisodeRecorder(store)
        capture = CameraCapture(camera, recorder.on_frame)
        camera.connect()
        capture.start()
        config = LoopConfig(rate_hz=50.0, max_steps=100_000, end_on_success=False)
        loop = ControlLoop(remote, None, [], [recorder, Report()], config)
        loop.run_episode(episode_id=episode_id)


if __name__ == "__main__":
    try:
        main(*sys.argv[1:4])
    except Exception as exc:
        print(f"E {type(exc).__name__}: {exc}", flush=True)
        raise SystemExit(1) from None
