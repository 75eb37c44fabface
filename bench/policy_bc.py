"""End-to-end check of the policy design: scripted-expert demonstrations in the simulator,
behaviour cloning, then closed-loop evaluation with action chunks executed open-loop.

Run: ``python bench/policy_bc.py [--episodes 40] [--epochs 200] [--eval 20] [--out PATH]``
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from takeover.app.policy.checkpoint import load_policy, save_checkpoint
from takeover.app.policy.train import HUMAN_SOURCE, TrainConfig, train
from takeover.app.station.metaworld_sim import MetaWorldConfig, MetaWorldStation


def collect(station: MetaWorldStation, episodes: int, first_seed: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for ep in range(episodes):
        obs = station.reset(first_seed + ep)
        step = 0
        while not station.done:
            action = station.expert_action()
            assert action is not None
            items.append(
                {
                    "state": obs.state,
                    "action": action,
                    "control_source": HUMAN_SOURCE,
                    "episode_index": ep,
                    "step_index": step,
                }
            )
            obs = station.act(action)
            step += 1
            if obs.success:
                break
    return items


def evaluate(station: MetaWorldStation, policy_path: str, episodes: int, first_seed: int, k: int) -> float:
    policy = load_policy(policy_path)
    wins = 0
    for ep in range(episodes):
        obs = station.reset(first_seed + ep)
        while not station.done and not obs.success:
            chunk = policy.predict(obs.state)
            for action in chunk[:k]:
                obs = station.act(action)
                if obs.success or station.done:
                    break
        wins += int(obs.success)
    return wins / episodes


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--episodes", type=int, default=40)
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--eval", type=int, default=20)
    ap.add_argument("--open-loop", type=int, default=4)
    ap.add_argument("--out", default=str(Path(tempfile.gettempdir()) / "bc-policy.safetensors"))
    args = ap.parse_args()
    with MetaWorldStation(MetaWorldConfig(cameras=(), max_steps=200)) as station:
        t0 = time.perf_counter()
        items = collect(station, args.episodes, first_seed=0)
        print(
            f"collected {len(items)} steps from {args.episodes} expert episodes "
            f"in {time.perf_counter() - t0:.1f} s"
        )
        result = train(items, TrainConfig(epochs=args.epochs))
        print(f"trained in {result.seconds:.1f} s, loss {result.losses[0]:.3f} -> {result.losses[-1]:.3f}")
        pid = save_checkpoint(result.model, args.out, result.record(TrainConfig(epochs=args.epochs)))
        rate = evaluate(station, args.out, args.eval, first_seed=10_000, k=args.open_loop)
        print(f"{pid}: success {rate:.0%} on {args.eval} unseen seeds (open-loop {args.open_loop})")


if __name__ == "__main__":
    main()
