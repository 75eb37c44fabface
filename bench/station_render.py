"""Measure the simulated station: physics-only step rate and per-camera render rate.

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


if __name__ == "__main__":
    main()
