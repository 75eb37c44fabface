"""The composition root: builds every part of a run from one :class:`AppConfig`.

Nothing else constructs stations, policy connections, devices or stores, so a run is fully
described by its configuration. Nothing here does I/O until :meth:`Runtime.open`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

import numpy as np

from takeover.app.control.loop import ControlLoop
from takeover.app.control.safety import ActionLimits
from takeover.app.net import curve
from takeover.app.policy.launcher import LocalPolicyServer, PolicyLaunchError
from takeover.app.policy.remote import PolicyConnectError, RemotePolicy
from takeover.app.runtime.config import AppConfig
from takeover.app.station.base import RendersOffLoop, Station
from takeover.app.station.remote import StationUnavailableError
from takeover.recorder.capture import CameraCapture, LatestFrames, LiveFrames, StepFrames
from takeover.recorder.recorder import EpisodeRecorder
from takeover.recorder.records import LoopObserver
from takeover.recorder.recovery import LogOutcome, recover_all
from takeover.storage.paths import default_store_root, store_urls_from_env
from takeover.storage.store import Store
from takeover.teleop.devices import TeleopDevice
from takeover.teleop.keyboard import KeyboardTeleop
from takeover.teleop.scripted import ScriptedOperator, ScriptedOperatorConfig

log = logging.getLogger(__name__)


class StartupError(RuntimeError):
    """Something a person must fix before a run can start; the message says what."""


def _client_keys(secret_key: str, server_key: str, what: str) -> curve.ClientKeys | None:
    if not secret_key:
        return None
    try:
        return curve.ClientKeys.load(secret_key, server_key)
    except curve.CurveKeyError as exc:
        raise StartupError(f"{what} CURVE keys: {exc}") from None


def build_station(config: AppConfig) -> Station:
    from takeover.app.station.metaworld_sim import (
        MetaWorldConfig,
        MetaWorldStation,
        check_task,
        task_time_limit_s,
    )

    s = config.station
    if s.kind == "remote":
        from takeover.app.station.remote import RemoteStation

        keys = _client_keys(s.curve_secret_key, s.curve_server_key, "station")
        return RemoteStation(s.url, timeout_s=s.timeout_s, keys=keys)
    defaults = MetaWorldConfig()
    try:
        check_task(s.task)
        station_config = MetaWorldConfig(
            task=s.task,
            cameras=s.cameras,
            width=s.width or defaults.width,
            height=s.height or defaults.height,
            rate_hz=config.loop.rate_hz,
            # Room for the whole attempt: held periods do not step the simulator.
            max_steps=max(defaults.max_steps, config.loop.attempt_steps(task_time_limit_s(s.task))),
            render=s.render,
            camera_fps=s.camera_fps,
        )
    except ValueError as exc:
        raise StartupError(f"station configuration: {exc}") from None
    return MetaWorldStation(station_config)


def store_root(config: AppConfig) -> Path:
    return Path(config.store.path).expanduser() if config.store.path else default_store_root()


class Runtime:
    """Everything one run needs, opened and closed together."""

    def __init__(
        self,
        config: AppConfig,
        extra_observers: list[LoopObserver] | None = None,
        use_policy: bool = True,
        attended: bool = False,
    ) -> None:
        """``attended``: a person at a console watches the attempts (held time does not count
        against an attempt's limit; see :class:`~takeover.app.control.loop.ControlLoop`)."""
        self.config = config
        self.attended = attended
        self.extra_observers = extra_observers or []
        self.use_policy = use_policy
        self._stack = contextlib.ExitStack()
        self.station: Station | None = None
        self.policy: RemotePolicy | None = None
        self.store: Store | None = None
        self.recorder: EpisodeRecorder | None = None
        self.previews = LatestFrames()
        """The newest frame of each free-running camera (the console's preview)."""
        self.live = LiveFrames()
        """Every station camera's newest frame, numbered (the engine publishes them to the console
        at the camera rate; free-running cameras reach it as previews in the status)."""
        self.recovered: list[LogOutcome] = []
        self.keyboard: KeyboardTeleop | None = None
        self.loop: ControlLoop | None = None

    def open(self) -> Self:
        try:
            self._open()
        except BaseException:
            self._stack.close()
            raise
        return self

    def _open(self) -> None:
        cfg = self.config
        root = store_root(cfg)
        # As every store command: the environment's URLs before the configuration's.
        catalog_url, blob_url = store_urls_from_env(cfg.store.catalog_url, cfg.store.blob_url)
        self.store = Store.open_or_create(root, catalog_url, blob_url=blob_url)
        self._stack.callback(self.store.close)
        # Attempts a crash left unfinished become recovered episodes before anything new is recorded.
        self.recovered = recover_all(self.store)
        if self.use_policy:
            url = cfg.policy.url
            server: LocalPolicyServer | None = None
            try:
                if not url:
                    server = LocalPolicyServer(cfg.policy.checkpoint)
                    self._stack.callback(server.stop)
                    url = server.start()
                self.policy = self._connect_policy(url, server)
            except PolicyLaunchError as exc:
                raise StartupError(str(exc)) from None
            self._stack.callback(self.policy.close)
        self.station = build_station(cfg)
        try:
            self.station.connect()
        except StationUnavailableError as exc:  # a remote station that is not there, or refuses
            raise StartupError(str(exc)) from None
        self._stack.callback(self.station.close)
        if isinstance(self.station, RendersOffLoop):
            self.station.add_frame_listener(self.live)
        try:  # the configured workspace must fit the station's own box, if it declares one
            ActionLimits.for_station(cfg.loop.safety, self.station.info)
        except ValueError as exc:
            raise StartupError(f"[loop.safety]: {exc}") from None
        devices = self._open_devices()
        self.recorder = EpisodeRecorder(self.store, self.config.recorder)
        self._stack.callback(self.recorder.close)
        if self.config.recorder.encoder == "process":
            self.recorder.prepare_soon()  # the first attempt need not wait for its encoder
        self._start_cameras(self.recorder)
        self.loop = ControlLoop(
            self.station,
            self.policy,
            devices,
            [self.recorder, StepFrames(self.live), *self.extra_observers],
            cfg.loop,
            operator_name=cfg.operator.name or cfg.operator.kind,
            attended=self.attended,
        )
        self._stack.callback(self.loop.close)  # before the policy it asks: its prefetch thread

    def _connect_policy(self, url: str, server: LocalPolicyServer | None) -> RemotePolicy:
        """Connect to the policy at ``url`` (a local ``server`` has already reported that it serves)."""
        p = self.config.policy
        keys = _client_keys(p.curve_secret_key, p.curve_server_key, "policy") if server is None else None
        # A chunk that takes longer than the policy watchdog allows is not worth waiting for.
        infer_timeout = min(p.timeout_s, self.config.loop.safety.policy_timeout_ms / 1000.0)
        policy = RemotePolicy(url, p.timeout_s, keys, infer_timeout_s=infer_timeout)
        try:
            policy.connect()
        except PolicyConnectError as exc:
            raise StartupError(str(exc)) from None
        return policy

    def _start_cameras(self, recorder: EpisodeRecorder) -> None:
        """Free-running cameras: each on its own capture thread, frames stamped at capture."""
        from takeover.recorder.cameras import (
            Camera,
            OpenCVCamera,
            OpenCVCameraConfig,
            SyntheticCamera,
            SyntheticCameraConfig,
        )

        for section in self.config.camera:
            camera: Camera
            if section.kind == "synthetic":
                defaults = SyntheticCameraConfig()
                camera = SyntheticCamera(
                    SyntheticCameraConfig(
                        name=section.name,
                        width=section.width or defaults.width,
                        height=section.height or defaults.height,
                        fps=section.fps or defaults.fps,
                    )
                )
            else:
                source: int | str = int(section.source) if section.source.isdigit() else section.source
                camera = OpenCVCamera(
                    OpenCVCameraConfig(
                        name=section.name,
                        source=source,
                        width=section.width or None,
                        height=section.height or None,
                        fps=section.fps or None,
                    )
                )
            try:
                camera.connect()
            except (OSError, RuntimeError, ValueError) as exc:
                raise StartupError(f"camera {section.name!r}: {exc}") from None
            self._stack.callback(camera.close)
            capture = CameraCapture(camera, self._sink(recorder), recorder.on_camera_health)
            capture.start()
            self._stack.callback(capture.stop)

    def _sink(self, recorder: EpisodeRecorder) -> Callable[[str, np.ndarray, float], None]:
        def sink(camera: str, image: np.ndarray, t: float) -> None:
            self.previews(camera, image, t)
            recorder.on_frame(camera, image, t)

        return sink

    def _open_devices(self) -> list[TeleopDevice]:
        kind = self.config.operator.kind
        devices: list[TeleopDevice] = []
        if kind in ("scripted", "expert"):
            devices.append(
                ScriptedOperator(ScriptedOperatorConfig(always_drive=kind == "expert"), time.monotonic)
            )
        elif kind == "spacemouse":
            from takeover.teleop.spacemouse import SpaceMouseTeleop

            devices.append(SpaceMouseTeleop(self.config.spacemouse))
        # The keyboard is always there when a view can send keys; headless runs ignore it.
        self.keyboard = KeyboardTeleop(self.config.keyboard)
        devices.append(self.keyboard)
        for dev in devices:
            try:
                dev.connect()
            except ConnectionError as exc:
                raise StartupError(f"{dev.name}: {exc}") from None
            self._stack.callback(dev.close)
        return devices

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def ensure_render_backend() -> None:
    """MuJoCo renders off-screen through EGL unless the user chose otherwise."""
    os.environ.setdefault("MUJOCO_GL", "egl")
