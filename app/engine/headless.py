"""Headless runs: the same control loop, no window, a line of output per attempt."""

from __future__ import annotations

import signal
import sys
from types import FrameType

from takeover.app.control.loop import AttemptRefused
from takeover.app.runtime.compose import Runtime, store_root
from takeover.app.runtime.config import AppConfig
from takeover.app.runtime.seeds import SeedSource, check_attempts
from takeover.storage.schema import EventKind
from takeover.storage.store import MARKER, Store


def run_headless(config: AppConfig, episodes: int, use_policy: bool = True) -> int:
    """Run ``episodes`` attempts; each takes its seed from ``config.seeds`` (the store by default)."""
    if episodes < 1:
        print("error: --episodes must be at least 1", file=sys.stderr)
        return 2
    check_attempts(config.seeds, episodes)
    root = store_root(config)
    if (root / MARKER).exists():  # refuse a read-only store before the simulator and policy load
        with Store.open(root, config.store.catalog_url or None, blob_url=config.store.blob_url or None) as s:
            s.require_writable("record attempts")
    with Runtime(config, use_policy=use_policy) as rt:
        assert rt.loop is not None and rt.store is not None
        loop = rt.loop
        seeds = SeedSource(config.seeds, rt.store)
        interrupted = False

        def on_signal(signum: int, frame: FrameType | None) -> None:
            nonlocal interrupted
            interrupted = True
            loop.control.request_stop(outcome="")

        old = signal.signal(signal.SIGINT, on_signal)
        old_term = signal.signal(signal.SIGTERM, on_signal)
        successes = 0
        try:
            print(f"store: {rt.store.root}   policy: {loop.policy.policy_id if loop.policy else 'none'}")
            for i in range(episodes):
                seed = seeds.next()
                try:
                    result = loop.run_episode(seed=seed)
                except AttemptRefused as exc:
                    print(f"error: episode {i + 1}/{episodes} not started: {exc}", file=sys.stderr)
                    return 2
                if result.reason:
                    print(
                        f"error: episode {i + 1}/{episodes} {result.episode_id} stopped after "
                        f"{result.steps} steps, robot held: {result.reason}",
                        file=sys.stderr,
                    )
                    return 2
                if rt.recorder is not None and rt.recorder.last_failure:
                    print(f"error: {rt.recorder.last_failure}", file=sys.stderr)
                    return 2
                successes += result.success
                takeovers = sum(e.kind is EventKind.TAKEOVER for e in result.events)
                handbacks = sum(e.kind is EventKind.HANDBACK for e in result.events)
                print(
                    f"episode {i + 1}/{episodes} {result.episode_id} (seed {seed}): {result.steps} steps, "
                    f"{'success' if result.success else 'failure'}, {takeovers} takeovers, "
                    f"{handbacks} hand-backs, {int(result.timing.get('overruns', 0))} overruns",
                    flush=True,
                )
                if interrupted:
                    print("interrupted: the running attempt was saved; stopping", file=sys.stderr)
                    return 130
        finally:
            signal.signal(signal.SIGINT, old)
            signal.signal(signal.SIGTERM, old_term)
        print(f"{successes}/{episodes} attempts succeeded; saved to {rt.store.root}")
    return 0
