"""Measure the simulated station: physics-only step rate, per-camera render rate (inline), and the
cost of act() with the cameras rendered off the loop (``render="process"``).

Run: ``MUJOCO_GL=egl python bench/station_render.py``
"""

from __future__ import annotations

import time

import numpy as np

from takeover.app.station.metaworld_sim import MetaWorldConfig, MetaWorldStation


def steps_per_second(config: MetaWorldConfig, n: int = 200) -> float:
    with MetaWorldStation(config) as station:
        station.reset(0)
        action = np.zeros(4, dtype=np.float32)
        t0 = time.perf_counter()
        for _ in range(n):
            station.act(action)
        return n / (time.perf_counter() - t0)


def off_loop(config: MetaWorldConfig, seconds: float = 5.0) -> tuple[float, float, dict[str, float]]:
    """Cameras rendered by the child process, the loop paced at ``config.rate_hz``: the mean and
    p99 cost of act() (ms) and the frames per second that reached the observations, per camera."""
    with MetaWorldStation(config) as station:
        station.reset(0)
        action = np.zeros(4, dtype=np.float32)
        n = int(seconds * config.rate_hz)
        cost, frames = np.empty(n), dict.fromkeys(config.cameras, 0)
        t0 = time.perf_counter()
        for i in range(n):
            start = time.perf_counter()
            obs = station.act(action)
            cost[i] = time.perf_counter() - start
            for name in obs.images:
                frames[name] += 1
            time.sleep(max(0.0, t0 + (i + 1) / config.rate_hz - time.perf_counter()))
        elapsed = time.perf_counter() - t0
    ms = cost * 1000.0
    return float(ms.mean()), float(np.percentile(ms, 99)), {k: v / elapsed for k, v in frames.items()}


def main() -> None:
    physics = steps_per_second(MetaWorldConfig(cameras=()), n=400)
    print(f"physics only: {physics:7.0f} steps/s")
    for width, height in ((160, 120), (224, 168), (320, 240)):
        for cameras in (("corner",), ("corner", "gripperPOV")):
            rate = steps_per_second(MetaWorldConfig(cameras=cameras, width=width, height=height))
            render_ms = (1.0 / rate - 1.0 / physics) * 1000.0 / len(cameras)
            print(
                f"{width}x{height} {'+'.join(cameras):18s}: {rate:6.1f} steps/s "
                f"({render_ms:5.1f} ms per camera render)"
            )
    for rate in (20.0, 50.0):
        config = MetaWorldConfig(cameras=("corner", "gripperPOV"), rate_hz=rate, render="process")
        mean, p99, fps = off_loop(config)
        shown = ", ".join(f"{k} {v:4.1f}" for k, v in fps.items())
        print(
            f"224x168 corner+gripperPOV off the loop at {rate:g} Hz: "
            f"act() mean {mean:5.2f} ms, p99 {p99:5.2f} ms; frames/s {shown}"
        )


if __name__ == "__main__":
    main()
