"""Control-loop timing, takeover latency and hand-over smoothness, at 50 Hz while recording 2 cameras.

Run: ``MUJOCO_GL=egl python bench/control_loop.py`` (``--quick`` for a shorter run).

Runs, each with the real EpisodeRecorder writing 2 cameras into a temporary store:

1. ``fake station``: an in-process station that answers at once (2 textured 224x168 frames per
   step), an in-process chunk policy, and an operator who takes over with a SpaceMouse: report
   bytes pushed from another thread into the fake HID transport, decoded by pyspacemouse.
1b. ``fake station, slow policy``: the same station with the wave policy answering in 30 ms (a
   policy server on another machine), asked synchronously (``inference_lead_steps = 0``) and
   3 periods ahead on a worker thread (``inference_lead_steps = 3``).
1c. ``fake station served``: the same station behind a station server on loopback, reached through
   ``RemoteStation``, which estimates the station's clock on every period and rebases each
   observation (also printed: the estimate, and what one fit of it costs).
2. ``simulator``: the Meta-World station rendering ``corner`` and ``gripperPOV``, the shipped
   policy behind a real policy server on loopback, the same SpaceMouse operator.
3. ``simulator, scripted``: the same simulator and policy, the scripted operator (the task's
   expert takes over when the policy stalls or drifts and hands back once the attempt is back on
   track).

Figures: period error (how late each period starts against its absolute deadline) p50 / p99 /
max and overruns; takeover latency from the report push to the first HUMAN action sent to the
station, in periods; and, for every takeover and hand-back (the periods of its blend), the largest
step of the commanded end-effector target (from ``Observation.ee_target``) against the largest step
in the half second on either side; for hand-backs also with the window counted to ``ramp_end``.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from takeover.app.control.inference import Proposal, ProposalSource
from takeover.app.control.loop import ControlLoop, LoopConfig
from takeover.app.control.pacing import Clock
from takeover.app.station.base import ExpertOracle, Observation, Station, StationInfo
from takeover.recorder.recorder import EpisodeRecorder, RecorderConfig
from takeover.recorder.records import EpisodeEnd, EpisodeStart, StepRecord
from takeover.storage.schema import ControlSource, Event, EventKind
from takeover.storage.store import Store
from takeover.teleop.devices import TeleopDevice
from takeover.teleop.spacemouse import SpaceMouseConfig, SpaceMouseTeleop
from takeover.teleop.testing import FakeHidDevice, SpaceMouseReports, install_fake_hid

RATE_HZ = 50.0


class FakeStation(Station):
    """Answers at once: integrates the delta into a commanded target, 2 pre-rendered cameras."""

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self._frames = {
            name: rng.integers(0, 255, (168, 224, 3), dtype=np.uint8) for name in ("corner", "gripperPOV")
        }
        self.target = np.zeros(3, dtype=np.float32)

    def connect(self) -> None:
        pass

    def close(self) -> None:
        pass

    @property
    def info(self) -> StationInfo:
        return StationInfo(
            "fake", "point", "bench", 4, 39, tuple(self._frames), RATE_HZ, (-1.0,) * 4, (1.0,) * 4
        )

    def _obs(self) -> Observation:
        t = time.monotonic()
        state = np.zeros(39, dtype=np.float32)
        state[:3] = self.target
        return Observation(t, state, self.target.copy(), dict(self._frames), dict.fromkeys(self._frames, t))

    def reset(self, seed: int | None = None) -> Observation:
        self.target = np.array([0.0, 0.6, 0.2], dtype=np.float32)
        return self._obs()

    def act(self, action: np.ndarray) -> Observation:
        self.target = self.target + 0.01 * np.asarray(action[:3], dtype=np.float32)
        return self._obs()


class WavePolicy:
    """A chunk policy that traces a slow circle (chunks of 8, in-process)."""

    policy_id = "wave"

    def infer(self, state: np.ndarray, step: int) -> Proposal:
        k = np.arange(step, step + 8, dtype=np.float64)
        wave = [0.6 * np.cos(k / 25.0), 0.6 * np.sin(k / 25.0), 0.2 * np.sin(k / 40.0), np.ones(8)]
        return Proposal(step, np.stack(wave, axis=1).astype(np.float32))


class SlowWavePolicy(WavePolicy):
    """The wave policy behind a slow link: every answer takes ``latency_s`` (a remote server)."""

    policy_id = "slow-wave"

    def __init__(self, latency_s: float) -> None:
        self.latency_s = latency_s

    def infer(self, state: np.ndarray, step: int) -> Proposal:
        time.sleep(self.latency_s)
        return super().infer(state, step)


class Tap(Station):
    """Wraps a station: the time each action was sent and the commanded target before/after."""

    def __init__(self, inner: Station) -> None:
        self.inner = inner
        self.sent: list[float] = []
        self.targets: list[np.ndarray] = []

    def connect(self) -> None:
        self.inner.connect()

    def close(self) -> None:
        self.inner.close()

    @property
    def info(self) -> StationInfo:
        return self.inner.info

    def reset(self, seed: int | None = None) -> Observation:
        obs = self.inner.reset(seed)
        self.sent, self.targets = [], [obs.ee_target.copy()]
        return obs

    def act(self, action: np.ndarray) -> Observation:
        self.sent.append(time.monotonic())
        obs = self.inner.act(action)
        self.targets.append(obs.ee_target.copy())
        return obs

    def expert_action(self) -> np.ndarray | None:
        return self.inner.expert_action() if isinstance(self.inner, ExpertOracle) else None


@dataclass
class Tape:
    sources: list[int] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    timing: dict[str, float] = field(default_factory=dict)
    errors: list[float] = field(default_factory=list)

    def on_episode_start(self, start: EpisodeStart) -> None:
        self.sources, self.events = [], []

    def on_step(self, step: StepRecord) -> None:
        self.sources.append(int(step.control_source))

    def on_event(self, event: Event) -> None:
        self.events.append(event)

    def on_episode_end(self, end: EpisodeEnd) -> None:
        self.timing = dict(end.timing)


class HandOperator(threading.Thread):
    """Pushes SpaceMouse reports from its own thread: touch (takeover), drive, let go, hand back."""

    def __init__(self, device: FakeHidDevice, reports: SpaceMouseReports, clock: Clock) -> None:
        super().__init__(name="bench-operator", daemon=True)
        self.device, self.reports, self.clock = device, reports, clock
        self.pushes: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        rnd = random.Random(1)
        while not self.stop.wait(rnd.uniform(1.2, 1.8)):  # the policy drives for a while
            self.pushes.append(self.clock.now())
            self.device.push(self.reports.motion(x=-0.4, y=0.7, z=0.2))
            if self.stop.wait(rnd.uniform(0.5, 0.9)):
                return
            self.device.push(self.reports.release())
            if self.stop.wait(0.2):
                return
            self.device.push(self.reports.buttons(1), self.reports.buttons())  # hand-back button


def takeover_latency(tap: Tap, tape: Tape, pushes: list[float], dt: float) -> list[float]:
    out = []
    sent = np.asarray(tap.sent)
    human = np.asarray(tape.sources) == int(ControlSource.HUMAN)
    for t in pushes:
        idx = np.nonzero((sent >= t) & human[: len(sent)])[0]
        if len(idx):
            out.append((sent[idx[0]] - t) / dt)
    return out


TOLERANCE_MM = 1e-3
"""Targets are float32 metres (about 0.06 µm apart near 0.6 m), so two steps of the same length
can differ by a fraction of a micrometre; steps within 1 µm of each other count as equal."""


def boundary_steps(tap: Tap, events: list[Event], config: LoopConfig) -> list[tuple[str, int, float, float]]:
    """Per hand-over: (kind, step, largest commanded-target step inside its window, largest step in
    the half second on either side of the window), in mm.

    The window of a hand-over is its blend, the periods whose command mixes the two sources: the
    ``takeover_blend_steps`` periods from a takeover, the ``ramp_steps`` periods from a hand-back
    (cut short by the next transition). A hand-back also gets a ``ramp`` row whose window is all of
    RAMP, up to the ``ramp_end`` event: the blend and then the rising speed cap, until the policy's
    action fits under it (that row is for information; see docs/control.md)."""
    targets = np.asarray(tap.targets, dtype=np.float64)
    steps = np.linalg.norm(np.diff(targets, axis=0), axis=1) * 1000.0
    half = round(config.rate_hz / 2)
    ordered = sorted(events, key=lambda e: e.step)
    out = []
    for i, ev in enumerate(ordered):
        b = ev.step
        if ev.kind not in (EventKind.TAKEOVER, EventKind.HANDBACK) or not 0 < b < len(steps):
            continue
        following = next((e.step for e in ordered[i + 1 :] if e.kind is not EventKind.LIMIT), len(steps))
        windows = []
        if ev.kind is EventKind.TAKEOVER:
            windows.append(("takeover", b + max(config.takeover_blend_steps, 1)))
        else:
            windows.append(("handback", min(b + max(config.ramp_steps, 1), following)))
            windows.append(("ramp", following))
        for kind, end in windows:
            end = min(end, len(steps))
            inside = steps[b:end]
            around = np.concatenate([steps[max(0, b - half) : b], steps[end : end + half]])
            if len(inside) and len(around):
                out.append((kind, b, float(inside.max()), float(around.max())))
    return out


OPTIONS = {"encoder": "process", "render": "process"}
"""What the command line chose: the recorder's encoder and how the simulator renders."""


@dataclass
class Result:
    name: str
    timing: dict[str, float]
    latencies: list[float]
    boundaries: list[tuple[str, int, float, float]]


def run(
    name: str,
    station: Station,
    policy: ProposalSource,
    devices: list[TeleopDevice],
    store: Store,
    steps: int,
    episodes: int,
    operator: HandOperator | None,
    lead: int = 0,
) -> Result:
    tap, tape = Tap(station), Tape()
    loop = ControlLoop(
        tap,
        policy,
        devices,
        [EpisodeRecorder(store, RecorderConfig(encoder=OPTIONS["encoder"])), tape],
        LoopConfig(rate_hz=RATE_HZ, max_steps=steps, end_on_success=False, inference_lead_steps=lead),
    )
    errors: list[float] = []
    overruns = periods = 0
    latencies: list[float] = []
    boundaries: list[tuple[str, int, float, float]] = []
    sections: dict[str, list[float]] = {}
    for ep in range(episodes):
        if operator is not None:
            operator.pushes.clear()
        loop.run_episode(seed=ep)
        overruns += int(tape.timing["overruns"])
        periods += int(tape.timing["periods"])
        errors.extend(_errors_of(loop))
        for k, v in tape.timing.items():
            if k.endswith("_ms") and not k.startswith("period_error"):
                sections.setdefault(k, []).append(v)
        if operator is not None:
            latencies += takeover_latency(tap, tape, list(operator.pushes), 1.0 / RATE_HZ)
        boundaries += boundary_steps(tap, tape.events, loop.config)
    e = np.asarray(errors) * 1000.0
    timing = {
        "periods": periods,
        "overruns": overruns,
        "p50": float(np.percentile(e, 50)),
        "p99": float(np.percentile(e, 99)),
        "max": float(e.max()),
    }
    timing.update({k: float(np.mean(v)) for k, v in sections.items()})
    return Result(name, timing, latencies, boundaries)


def _errors_of(loop: ControlLoop) -> list[float]:
    return list(loop.last_timer.errors) if loop.last_timer is not None else []


def served_fake_station(store: Store, steps: int) -> tuple[Result, str]:
    """The fake station behind a station server in a thread, reached over loopback; with a line on
    the station clock's estimate."""
    from takeover.app.station.remote import RemoteStation
    from takeover.app.station.server import StationServer, StationServerConfig

    server = StationServer(FakeStation(), StationServerConfig(endpoint="tcp://127.0.0.1:*", poll_ms=20))
    server.bind()
    thread = threading.Thread(target=server.serve_forever, name="bench-station", daemon=True)
    thread.start()
    try:
        with RemoteStation(server.endpoint) as remote:
            name = "fake station served on loopback (RemoteStation, clock estimated every period)"
            result = run(name, remote, WavePolicy(), [], store, steps, 1, None)
            estimate = remote.clock_estimate()
            assert estimate is not None
            t0 = time.perf_counter()
            for _ in range(200):
                remote.sync._fit()  # what every period's estimate costs, on the attempt's samples
            fit_ms = (time.perf_counter() - t0) / 200 * 1000.0
            line = (
                f"  station clock: offset {1e6 * estimate.offset_s:+.1f} us, uncertainty "
                f"{1e6 * estimate.uncertainty_s:.1f} us, best round trip {1e6 * estimate.best_rtt_s:.0f} us; "
                f"{estimate.samples} samples, one fit {fit_ms:.3f} ms"
            )
    finally:
        server.stop()
        thread.join()
        server.close()
    return result, line


def spacemouse_devices(clock: Clock) -> tuple[list[TeleopDevice], HandOperator, FakeHidDevice]:
    reports = SpaceMouseReports("SpaceMouseCompact")
    dev = reports.device()
    sm = SpaceMouseTeleop(SpaceMouseConfig())
    return [sm], HandOperator(dev, reports, clock), dev


def print_result(r: Result) -> None:
    t = r.timing
    print(f"\n== {r.name}: {int(t['periods'])} periods at {RATE_HZ:.0f} Hz, recording 2 cameras")
    print(
        f"  period error (start - deadline)  p50 {t['p50']:.3f} ms   p99 {t['p99']:.3f} ms   "
        f"max {t['max']:.3f} ms   overruns {int(t['overruns'])}"
    )
    secs = "   ".join(
        f"{s} {t[s + '_ms']:.2f}/{t[s + '_max_ms']:.1f}"
        for s in ("observe", "infer", "arbitrate", "act", "record")
        if s + "_ms" in t
    )
    print(f"  sections mean/max ms: {secs}")
    if r.latencies:
        lat = np.asarray(r.latencies)
        print(
            f"  takeover latency (report push -> first HUMAN action sent): n={len(lat)}   "
            f"p50 {np.percentile(lat, 50):.3f}   max {lat.max():.3f} periods"
        )
    if r.boundaries:
        for label, kinds in (
            ("hand-overs (blend windows)", ("takeover", "handback")),
            ("hand-backs counted to ramp_end (information)", ("ramp",)),
        ):
            rows = [row for row in r.boundaries if row[0] in kinds]
            if not rows:
                continue
            ok = sum(b <= a + TOLERANCE_MM for _, _, b, a in rows)
            worst = max(b / a if a > 0 else (0.0 if b == 0 else np.inf) for _, _, b, a in rows)
            print(
                f"  {label}: largest commanded-target step <= largest in the second around: "
                f"{ok}/{len(rows)}   worst ratio {worst:.3f}"
            )
        for kind, step, b, a in r.boundaries:
            flag = "" if b <= a + TOLERANCE_MM else "   LARGER"
            print(f"    {kind:9s} step {step:4d}: max {b:6.2f} mm inside   (around: max {a:6.2f} mm){flag}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter runs")
    ap.add_argument("--no-sim", action="store_true", help="only the fake station")
    ap.add_argument(
        "--switch-interval-ms",
        type=float,
        default=0.0,
        help="set the interpreter's thread switch interval (0 = leave Python's default of 5 ms)",
    )
    ap.add_argument("--encoder", choices=("process", "threads"), default="process", help="JPEG encoding")
    ap.add_argument("--render", choices=("process", "inline"), default="process", help="simulator cameras")
    args = ap.parse_args()
    OPTIONS.update(encoder=args.encoder, render=args.render)
    print(f"recorder encoder: {args.encoder}; simulator cameras rendered: {args.render}")
    if args.switch_interval_ms > 0:
        sys.setswitchinterval(args.switch_interval_ms / 1000.0)
    print(f"thread switch interval {1000 * sys.getswitchinterval():.1f} ms")
    os.environ.setdefault("MUJOCO_GL", "egl")
    clock = Clock()
    fake_steps = 500 if args.quick else 1500
    results = []
    with (
        tempfile.TemporaryDirectory(prefix="takeover-bench-") as tmp,
        Store.open_or_create(Path(tmp) / "store") as store,
    ):
        devices, op, dev = spacemouse_devices(clock)
        with install_fake_hid(None, [dev]):
            for d in devices:
                d.connect()
            op.start()
            results.append(
                run(
                    "fake station (answers at once), SpaceMouse operator",
                    FakeStation(),
                    WavePolicy(),
                    devices,
                    store,
                    fake_steps,
                    1,
                    op,
                )
            )
            op.stop.set()
            op.join()
            for d in devices:
                d.close()
        print_result(results[-1])
        latency_s = 0.03
        for lead in (0, 3):
            how = "asked when the window runs out" if lead == 0 else f"asked {lead} periods ahead"
            results.append(
                run(
                    f"fake station, policy answering in {1000 * latency_s:.0f} ms, {how}",
                    FakeStation(),
                    SlowWavePolicy(latency_s),
                    [],
                    store,
                    500 if args.quick else 1000,
                    1,
                    None,
                    lead=lead,
                )
            )
            print_result(results[-1])
        if len(results) == 3:
            sync, ahead = results[1].timing, results[2].timing
            print(
                f"\n  asking ahead: overruns {int(sync['overruns'])} -> {int(ahead['overruns'])}, "
                f"p99 period error {sync['p99']:.2f} -> {ahead['p99']:.2f} ms "
                f"({sync['p99'] / max(ahead['p99'], 1e-9):.0f}x lower)"
            )
        served, clock_line = served_fake_station(store, 500 if args.quick else 1000)
        results.append(served)
        print_result(served)
        print(clock_line)
        if args.no_sim:
            return
        from takeover.app.policy.launcher import LocalPolicyServer
        from takeover.app.policy.remote import PolicyConnectError, RemotePolicy
        from takeover.app.station.metaworld_sim import MetaWorldConfig, MetaWorldStation
        from takeover.teleop.scripted import ScriptedOperator, ScriptedOperatorConfig

        server = LocalPolicyServer("")
        url = server.start()
        try:
            deadline = time.monotonic() + 120
            while True:
                policy = RemotePolicy(url, 5.0)
                try:
                    policy.connect()
                    break
                except PolicyConnectError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
            cameras = ("corner", "gripperPOV")
            sim = MetaWorldStation(
                MetaWorldConfig(cameras=cameras, rate_hz=RATE_HZ, render=OPTIONS["render"])
            )
            with sim:
                sim_steps = 250 if args.quick else 500
                devices, op, dev = spacemouse_devices(clock)
                with install_fake_hid(None, [dev]):
                    for d in devices:
                        d.connect()
                    op.start()
                    results.append(
                        run(
                            "simulator (Meta-World, 2 cameras rendered), SpaceMouse operator",
                            sim,
                            policy,
                            devices,
                            store,
                            sim_steps,
                            1,
                            op,
                        )
                    )
                    op.stop.set()
                    op.join()
                    for d in devices:
                        d.close()
                print_result(results[-1])
                scripted = ScriptedOperator(ScriptedOperatorConfig(), clock.now)
                scripted.connect()
                results.append(
                    run(
                        "simulator, scripted operator (expert steps in)",
                        sim,
                        policy,
                        [scripted],
                        store,
                        sim_steps,
                        2 if args.quick else 4,
                        None,
                    )
                )
                print_result(results[-1])
            policy.close()
        finally:
            server.stop()


if __name__ == "__main__":
    main()
