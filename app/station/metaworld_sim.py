"""The simulated station: a Meta-World (MuJoCo) Sawyer task with offscreen camera rendering.

Nothing is imported from the simulator stack until :meth:`MetaWorldStation.connect` (or
:func:`check_task`), so this module imports cleanly on a machine without MuJoCo; ``connect()``
then says what is missing.

Randomisation: every :meth:`MetaWorldStation.reset` re-seeds the environment and draws a fresh
object and goal position from the task's full reset range (the same draw Meta-World uses to build
its benchmark task lists), so an attempt is reproducible from its seed alone. ``reset(None)``
draws the seed from a generator seeded with ``config.seed``; the seed used is
:attr:`MetaWorldStation.last_seed`.

Rendering: with ``render="process"`` the cameras are rendered off the control loop by a child
process (:mod:`takeover.app.station.render_process`) from a snapshot of the state taken at each
step, at most ``camera_fps`` times a second; an observation then carries the frames finished
since the previous one, each stamped with the time of the observation whose state it shows (named
in :attr:`Observation.rendered_earlier`). ``render="inline"`` renders every camera inside
``reset``/``act`` (every observation has a frame of its own state, and costs the render time).

Cameras: Meta-World's corner cameras are mounted upside down; images from cameras whose up axis
points below the horizon are rotated by 180 degrees so that every image is upright (a rotation,
never a mirror).
"""

from __future__ import annotations

import difflib
import os
import time
import warnings
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from takeover.app.station.base import Observation, Station, StationInfo
from takeover.app.station.render_process import RenderedFrame, RenderProcess, SimState
from takeover.teleop.devices import TaskProgress

ACTION_DIM = 4
STATE_DIM = 39
META_WORLD_MAX_PATH = 500
"""Meta-World's own ceiling on the steps of an episode (raised per station to fit its limit)."""
MAX_STEPS_CEILING = 100_000
DEFAULT_TIME_LIMIT_S = 20.0
"""An attempt's time limit for a task without an entry in :data:`TASK_TIME_LIMIT_S`."""
TASK_TIME_LIMIT_S: dict[str, float] = {
    "reach-v3": 10.0,
    "reach-wall-v3": 12.0,
    "push-v3": 20.0,
    "push-wall-v3": 25.0,
    "push-back-v3": 25.0,
    "pick-place-v3": 25.0,
    "pick-place-wall-v3": 30.0,
    "pick-out-of-hole-v3": 25.0,
    "door-open-v3": 20.0,
    "door-close-v3": 12.0,
    "drawer-open-v3": 15.0,
    "drawer-close-v3": 12.0,
    "button-press-v3": 10.0,
    "button-press-topdown-v3": 10.0,
    "window-open-v3": 15.0,
    "window-close-v3": 15.0,
    "peg-insert-side-v3": 30.0,
    "assembly-v3": 35.0,
    "disassemble-v3": 30.0,
    "basketball-v3": 30.0,
    "hammer-v3": 30.0,
    "shelf-place-v3": 30.0,
    "stick-pull-v3": 35.0,
    "stick-push-v3": 30.0,
    "lever-pull-v3": 20.0,
    "faucet-open-v3": 15.0,
    "faucet-close-v3": 15.0,
    "coffee-push-v3": 20.0,
    "coffee-pull-v3": 20.0,
    "coffee-button-v3": 12.0,
    "sweep-v3": 25.0,
    "sweep-into-v3": 25.0,
    "bin-picking-v3": 30.0,
    "box-close-v3": 30.0,
}
"""How long a person needs for one attempt at each task, with room to correct a policy (s). An
attempt's step limit is this times the control rate, unless ``[loop] max_steps`` says otherwise."""


def task_time_limit_s(task: str) -> float:
    """The time limit of an attempt at Meta-World task ``task`` (s)."""
    return TASK_TIME_LIMIT_S.get(task, DEFAULT_TIME_LIMIT_S)


GRASP_FIRST_TASKS = frozenset(
    {
        "pick-place-v3",
        "pick-place-wall-v3",
        "pick-out-of-hole-v3",
        "shelf-place-v3",
        "bin-picking-v3",
        "basketball-v3",
        "assembly-v3",
        "disassemble-v3",
        "hammer-v3",
    }
)
"""Tasks whose first sub-task is to grasp (and, where it matters, lift) an object: their progress
(:meth:`MetaWorldStation.task_progress`) counts Meta-World's own ``grasp_success`` as the first of
two sub-tasks. Every other task has one, the task itself."""


def task_stages(task: str) -> int:
    """How many sub-tasks :meth:`MetaWorldStation.task_progress` counts for Meta-World task ``task``."""
    return 2 if task in GRASP_FIRST_TASKS else 1


RENDER_MODES = ("inline", "process")
MAX_CAMERA_FPS = 30.0
KNOWN_CAMERAS = ("topview", "corner", "corner2", "corner3", "corner4", "behindGripper", "gripperPOV")
_TASK_TEXT = {"pick-place-v3": "pick up the puck and place it at the goal"}


@dataclass(frozen=True)
class MetaWorldConfig:
    task: str = "pick-place-v3"
    cameras: tuple[str, ...] = ("corner",)
    """Meta-World camera names to render each step (may be empty: no rendering)."""
    width: int = 224
    height: int = 168
    rate_hz: float = 20.0
    seed: int = 0
    """Seeds the generator that picks a seed for ``reset(None)``."""
    max_steps: int = META_WORLD_MAX_PATH
    """Steps the station allows per attempt (Meta-World's own ceiling is raised to it); held
    periods (:meth:`MetaWorldStation.hold`) do not step and do not count."""
    render: str = "inline"
    """'inline' (inside reset/act) or 'process' (off the loop, in a child process)."""
    camera_fps: float = 0.0
    """Frames per second per camera when rendering off the loop; 0: the loop rate, at most 30."""

    @property
    def frames_per_s(self) -> float:
        return self.camera_fps if self.camera_fps > 0 else min(self.rate_hz, MAX_CAMERA_FPS)

    def __post_init__(self) -> None:
        unknown = [c for c in self.cameras if c not in KNOWN_CAMERAS]
        if unknown:
            raise ValueError(f"unknown camera(s) {unknown}; choose from {list(KNOWN_CAMERAS)}")
        if len(set(self.cameras)) != len(self.cameras):
            raise ValueError(f"cameras must be distinct, got {list(self.cameras)}")
        if not (16 <= self.width <= 1920 and 16 <= self.height <= 1080):
            raise ValueError(f"image size {self.width}x{self.height} is outside 16x16 .. 1920x1080")
        if not self.rate_hz > 0:
            raise ValueError(f"rate_hz must be positive, got {self.rate_hz}")
        if self.render not in RENDER_MODES:
            raise ValueError(f"render must be one of {', '.join(RENDER_MODES)}, got {self.render!r}")
        if not 0 <= self.camera_fps <= 120:
            raise ValueError(f"camera_fps must be in 0..120 (0: the loop rate), got {self.camera_fps}")
        if not 1 <= self.max_steps <= MAX_STEPS_CEILING:
            raise ValueError(f"max_steps must be in 1..{MAX_STEPS_CEILING}, got {self.max_steps}")


def _import_metaworld() -> Any:
    os.environ.setdefault("MUJOCO_GL", "egl")  # MuJoCo reads it once, when first imported
    try:
        import metaworld
        import metaworld.policies
        import mujoco  # noqa: F401
    except ImportError as exc:
        raise RuntimeError(f"the simulated station needs the 'sim' extra (metaworld, mujoco): {exc}") from exc
    return metaworld


def check_task(task: str, what: str = "station.task") -> None:
    """Raise ValueError, naming ``what`` (the key or option that chose it), if Meta-World has no
    task ``task``. Imports the simulator (RuntimeError if it is not installed)."""
    names: list[str] = sorted(_import_metaworld().MT1.ENV_NAMES)
    if task in names:
        return
    close = difflib.get_close_matches(task, names, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}?" if close else f"choose one of {', '.join(names[:6])}, …"
    raise ValueError(f"{what}: Meta-World has no task {task!r}: {hint} ({len(names)} tasks; docs/config.md)")


def _free(renderer: Any, env: Any, worker: RenderProcess | None = None) -> None:
    if worker is not None:
        worker.close()
    if renderer is not None:
        renderer.close()
    if env is not None:
        env.close()


class MetaWorldStation(Station):
    """A Meta-World task as a :class:`Station`. Call :meth:`connect` (or use ``with``) first."""

    def __init__(self, config: MetaWorldConfig | None = None) -> None:
        self.config = config or MetaWorldConfig()
        self._env: Any = None
        self._renderer: Any = None
        self._worker: RenderProcess | None = None
        self._attempt_t = 0.0
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._expert: Any = None
        self._upside_down: dict[str, bool] = {}
        self._obs: np.ndarray | None = None
        self._success = False
        self._grasped = False
        self._steps = 0
        self._seed_rng = np.random.default_rng(self.config.seed)
        self.last_seed: int | None = None
        """The seed of the current attempt (set by :meth:`reset`)."""

    # -- lifecycle -------------------------------------------------------------------------------

    def connect(self) -> None:
        if self._env is not None:
            return
        metaworld = _import_metaworld()
        import mujoco

        task = self.config.task
        check_task(task)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            benchmark = metaworld.MT1(task, seed=0)
            env = benchmark.train_classes[task]()
            env.set_task(benchmark.train_tasks[0])
        # Draw object and goal from the full reset range with the env's own seeded generator, as
        # Meta-World does when it builds task lists, instead of cycling through 50 frozen layouts.
        env._freeze_rand_vec = False
        env.seeded_rand_vec = True
        env.max_path_length = self.config.max_steps
        self._env = env
        try:
            policy_cls: Any = metaworld.policies.ENV_POLICY_MAP.get(task)
            self._expert = policy_cls() if policy_cls is not None else None
            cfg = self.config
            if cfg.cameras:
                mujoco.mj_forward(env.model, env.data)
                for name in cfg.cameras:
                    up = env.data.camera(name).xmat.reshape(3, 3)[:, 1]
                    self._upside_down[name] = bool(up[2] < 0)
                if cfg.render == "process":
                    upside = tuple(self._upside_down[c] for c in cfg.cameras)
                    worker = RenderProcess(cfg.cameras, upside, cfg.width, cfg.height, cfg.frames_per_s)
                    self._worker = worker
                    worker.start(env.model, self._snapshot(time.monotonic()))  # the scene, before any reset
                else:
                    self._renderer = mujoco.Renderer(env.model, cfg.height, cfg.width)
        except BaseException:
            self.close()
            raise
        # Safety net for a station that is never closed: free the GL context at interpreter exit,
        # before module teardown, instead of letting the renderer's __del__ fail noisily.
        self._finalizer = weakref.finalize(self, _free, self._renderer, env, self._worker)

    def close(self) -> None:
        finalizer, self._finalizer = self._finalizer, None
        renderer, self._renderer = self._renderer, None
        worker, self._worker = self._worker, None
        env, self._env = self._env, None
        self._obs = None
        if finalizer is not None:
            finalizer()
        else:
            _free(renderer, env, worker)

    @property
    def connected(self) -> bool:
        return self._env is not None

    # -- station interface -----------------------------------------------------------------------

    @property
    def info(self) -> StationInfo:
        task = self.config.task
        return StationInfo(
            name="sim-" + task.removesuffix("-v3"),
            robot="sawyer",
            task=_TASK_TEXT.get(task, task.removesuffix("-v3").replace("-", " ")),
            action_dim=ACTION_DIM,
            state_dim=STATE_DIM,
            cameras=tuple(self.config.cameras),
            rate_hz=self.config.rate_hz,
            action_low=(-1.0,) * ACTION_DIM,
            action_high=(1.0,) * ACTION_DIM,
            workspace_low=self._mocap_box(0),
            workspace_high=self._mocap_box(1),
            time_limit_s=task_time_limit_s(task),
        )

    def _mocap_box(self, side: int) -> tuple[float, float, float] | None:
        """Meta-World clips its mocap target to ``mocap_low`` / ``mocap_high`` (known once connected)."""
        env = self._env
        box = getattr(env, "mocap_low" if side == 0 else "mocap_high", None) if env is not None else None
        if box is None:
            return None
        x, y, z = (float(v) for v in np.asarray(box, dtype=np.float64).reshape(3))
        return (x, y, z)

    @property
    def steps(self) -> int:
        """Steps taken in the current attempt."""
        return self._steps

    @property
    def done(self) -> bool:
        """True when the attempt has used all of ``config.max_steps``."""
        return self._steps >= self.config.max_steps

    def reset(self, seed: int | None = None) -> Observation:
        env = self._require_env()
        if seed is None:
            seed = int(self._seed_rng.integers(0, 2**31 - 1))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            env.seed(int(seed))
            obs, _ = env.reset()
        self.last_seed = int(seed)
        self._steps = 0
        self._grasped = False
        if self._worker is not None:
            self._worker.set_model(env.model)  # Meta-World moves the goal in the model at reset
        return self._observe(obs, success=False, first=True)

    def act(self, action: np.ndarray) -> Observation:
        env = self._require_env()
        if self._obs is None:
            raise RuntimeError("call reset() before act()")
        a = np.asarray(action, dtype=np.float64)
        if a.shape != (ACTION_DIM,):
            raise ValueError(f"action must have shape ({ACTION_DIM},), got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"action contains NaN or Inf: {a.tolist()}")
        if self.done:
            raise RuntimeError(f"the attempt has used all {self.config.max_steps} steps; call reset()")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obs, _reward, _terminated, _truncated, info = env.step(np.clip(a, -1.0, 1.0))
        self._steps += 1
        self._grasped = bool(info.get("grasp_success", False))
        return self._observe(obs, success=bool(info["success"]))

    def hold(self) -> Observation:
        """The station as it is, observed again without stepping the simulation (a held period:
        Meta-World's step count is not advanced)."""
        self._require_env()
        if self._obs is None:
            raise RuntimeError("call reset() before hold()")
        return self._observe(self._obs, success=self._success)

    def expert_action(self) -> np.ndarray | None:
        if self._expert is None or self._obs is None:
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the scripted policies warn that their gains exceed 1
            action = self._expert.get_action(self._obs.astype(np.float64))
        return np.clip(np.asarray(action, dtype=np.float32), -1.0, 1.0)

    def task_progress(self) -> TaskProgress | None:
        """Sub-tasks of the current attempt done now, from the simulator's own judgement of the
        last step: for :data:`GRASP_FIRST_TASKS` the object held (Meta-World's ``grasp_success``:
        for pick-place, grasped and lifted off the table), then the task done; for other tasks the
        task done. None before the first reset."""
        if self._obs is None:
            return None
        stages = task_stages(self.config.task)
        if self._success:
            return TaskProgress(done=stages, stages=stages)
        return TaskProgress(done=int(stages > 1 and self._grasped), stages=stages)

    # -- internals -------------------------------------------------------------------------------

    def _require_env(self) -> Any:
        if self._env is None:
            raise RuntimeError("station is not connected: call connect() first")
        return self._env

    def _observe(self, obs: np.ndarray, *, success: bool, first: bool = False) -> Observation:
        t = time.monotonic()
        state = np.asarray(obs, dtype=np.float32).copy()
        self._obs = state
        self._success = success
        ee_target = np.asarray(self._env.data.mocap_pos[0], dtype=np.float32).copy()
        if self._worker is not None:
            if first:
                self._attempt_t = t  # frames of states before this attempt's reset are not its own
            self._worker.submit(self._snapshot(t))
            frames = {n: f for n, f in self._worker.take_new().items() if f.t >= self._attempt_t}
            return Observation(
                t=t,
                state=state,
                ee_target=ee_target,
                images={name: f.image for name, f in frames.items()},
                image_times={name: f.t for name, f in frames.items()},
                success=success,
                rendered_earlier=frozenset(frames),
            )
        images, image_times = self._render()
        return Observation(
            t=t, state=state, ee_target=ee_target, images=images, image_times=image_times, success=success
        )

    def _snapshot(self, t: float) -> SimState:
        """The state the cameras show, taken now (``t``: the observation's time)."""
        data = self._env.data
        return SimState(
            t=t,
            qpos=data.qpos.copy(),
            qvel=data.qvel.copy(),
            mocap_pos=data.mocap_pos.copy(),
            mocap_quat=data.mocap_quat.copy(),
        )

    @property
    def render_worker(self) -> RenderProcess | None:
        """The process rendering the cameras off the loop (``render="process"``), once connected."""
        return self._worker

    def add_frame_listener(self, listener: Callable[[str, np.ndarray, float], object]) -> None:
        """Every frame rendered off the loop, as it is made (nothing when rendering inline)."""
        if self._worker is not None:
            self._worker.add_listener(lambda f: listener(f.camera, f.image, f.t))

    def show_scene(self) -> None:
        """Render the scene as it is now, stamped now, without stepping (off-loop rendering only:
        between attempts, for the console's live view; frames older than an attempt's reset are
        never part of that attempt)."""
        if self._worker is not None and self._env is not None:
            self._worker.submit(self._snapshot(time.monotonic()))

    def latest_frames(self) -> dict[str, RenderedFrame]:
        """The newest rendered frame of each camera (off-loop rendering only; else empty)."""
        return self._worker.latest() if self._worker is not None else {}

    def _render(self) -> tuple[dict[str, np.ndarray], dict[str, float]]:
        images: dict[str, np.ndarray] = {}
        times: dict[str, float] = {}
        if self._renderer is None:
            return images, times
        import mujoco

        off = (
            mujoco.mjtRndFlag.mjRND_SHADOW,
            mujoco.mjtRndFlag.mjRND_REFLECTION,
            mujoco.mjtRndFlag.mjRND_SKYBOX,
        )
        for name in self.config.cameras:
            self._renderer.update_scene(self._env.data, camera=name)
            for flag in off:
                self._renderer.scene.flags[flag] = 0
            img = self._renderer.render()
            times[name] = time.monotonic()
            if self._upside_down[name]:
                img = img[::-1, ::-1]
            images[name] = np.ascontiguousarray(img)
        return images, times
