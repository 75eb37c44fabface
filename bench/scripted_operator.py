"""The scripted operator's rescue rate: how often an attempt it had to step into ends in success.

Run: ``MUJOCO_GL=egl python bench/scripted_operator.py [--attempts 30] [--seed 1000] [--checkpoint PATH]``

Runs ``--attempts`` attempts at the simulated pick-place station (no cameras, unpaced) through the
real control loop, with the shipped policy (or ``--checkpoint``) answering in-process and the
scripted operator watching: it takes over when the policy stalls or drifts and hands back once the
attempt is back on track (the station's task progress). Each attempt's limit is the task's own
(``LoopConfig.max_steps = 0``). ``--fixed-handback`` makes the operator hand back after a fixed
number of periods instead, as it did before the station reported progress, for comparison.

Prints, per attempt: seed, steps, outcome, takeovers and why; then the success rate, the attempts
with a takeover, the **rescue rate** (of those, how many ended in success), takeovers per attempt,
the human-step fraction and the time per attempt.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np

from takeover.app.control.inference import Proposal
from takeover.app.control.loop import ControlLoop, LoopConfig
from takeover.app.control.pacing import Clock
from takeover.app.policy.server import PolicyOutput, Predictor
from takeover.app.station.metaworld_sim import MetaWorldConfig, MetaWorldStation, task_time_limit_s
from takeover.recorder.records import EpisodeEnd, EpisodeStart, StepRecord
from takeover.storage.schema import ControlSource, Event, EventKind
from takeover.teleop.scripted import ScriptedOperator, ScriptedOperatorConfig


class InProcessPolicy:
    """A loaded policy answering in this process (no server: the bench measures the operator)."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor = predictor
        self.policy_id = predictor.policy_id

    def infer(self, state: np.ndarray, step: int) -> Proposal:
        out = self.predictor.predict(state)
        actions = out.actions if isinstance(out, PolicyOutput) else out
        return Proposal(step, np.asarray(actions, dtype=np.float32))


class HumanSteps:
    """Counts the periods the human drove in the current attempt (a loop observer)."""

    def __init__(self) -> None:
        self.human = 0
        self.steps = 0

    def on_episode_start(self, start: EpisodeStart) -> None:
        self.human = self.steps = 0

    def on_step(self, step: StepRecord) -> None:
        self.steps += 1
        self.human += int(step.control_source is ControlSource.HUMAN)

    def on_event(self, event: Event) -> None:
        pass

    def on_episode_end(self, end: EpisodeEnd) -> None:
        pass


@dataclass(frozen=True)
class Attempt:
    seed: int
    steps: int
    success: bool
    takeovers: int
    handbacks: int
    human_steps: int
    reasons: tuple[str, ...]
    retries: int


@dataclass(frozen=True)
class Summary:
    attempts: int
    successes: int
    with_takeover: int
    rescued: int
    takeovers: int
    steps: int
    human_steps: int

    @property
    def rescue_rate(self) -> float:
        return self.rescued / self.with_takeover if self.with_takeover else float("nan")


def summarize(attempts: list[Attempt]) -> Summary:
    helped = [a for a in attempts if a.takeovers]
    return Summary(
        attempts=len(attempts),
        successes=sum(a.success for a in attempts),
        with_takeover=len(helped),
        rescued=sum(a.success for a in helped),
        takeovers=sum(a.takeovers for a in attempts),
        steps=sum(a.steps for a in attempts),
        human_steps=sum(a.human_steps for a in attempts),
    )


def run_attempts(
    predictor: Predictor,
    seeds: list[int],
    operator_config: ScriptedOperatorConfig,
    task: str = "pick-place-v3",
    verbose: bool = True,
) -> list[Attempt]:
    """Run one attempt per seed through the control loop; the station's limit is the task's."""
    clock = Clock()
    operator = ScriptedOperator(operator_config, clock.now)
    counter = HumanSteps()
    config = LoopConfig(paced=False)
    limit = config.attempt_steps(task_time_limit_s(task))  # the task's own limit
    station_config = MetaWorldConfig(
        task=task, cameras=(), rate_hz=config.rate_hz, max_steps=max(MetaWorldConfig().max_steps, limit)
    )
    results: list[Attempt] = []
    with MetaWorldStation(station_config) as station, operator:
        loop = ControlLoop(station, InProcessPolicy(predictor), [operator], [counter], config, clock)
        for seed in seeds:
            before, retries = len(operator.reasons), operator.retries
            result = loop.run_episode(seed=seed)
            attempt = Attempt(
                seed=seed,
                steps=result.steps,
                success=result.success,
                takeovers=sum(e.kind is EventKind.TAKEOVER for e in result.events),
                handbacks=sum(e.kind is EventKind.HANDBACK for e in result.events),
                human_steps=counter.human,
                reasons=tuple(operator.reasons[before:]),
                retries=operator.retries - retries,
            )
            results.append(attempt)
            if verbose:
                outcome = "success" if attempt.success else "failure"
                print(
                    f"  seed {seed}: {attempt.steps:4d} steps, {outcome}, {attempt.takeovers} takeovers "
                    f"{list(attempt.reasons)}, {attempt.handbacks} hand-backs, "
                    f"{attempt.human_steps} human steps, {attempt.retries} times started over",
                    flush=True,
                )
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--attempts", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1000, help="seed of the first attempt, then +1, ...")
    ap.add_argument("--checkpoint", default="", help="policy checkpoint (default: the shipped one)")
    ap.add_argument("--task", default="pick-place-v3")
    ap.add_argument(
        "--fixed-handback", action="store_true", help="hand back after a fixed number of periods instead"
    )
    ap.add_argument("--quiet", action="store_true", help="only the summary")
    args = ap.parse_args()
    from takeover.app.policy import default_checkpoint_path
    from takeover.app.policy.loader import load_policy_from

    predictor = load_policy_from(args.checkpoint or default_checkpoint_path())
    operator_config = ScriptedOperatorConfig(judge_progress=not args.fixed_handback)
    rule = "fixed hand-back" if args.fixed_handback else "hand back when on track"
    print(f"{args.task}, policy {predictor.policy_id}, scripted operator ({rule}), seeds {args.seed}..")
    t0 = time.perf_counter()
    attempts = run_attempts(
        predictor,
        list(range(args.seed, args.seed + args.attempts)),
        operator_config,
        args.task,
        not args.quiet,
    )
    seconds = time.perf_counter() - t0
    s = summarize(attempts)
    print(
        f"success rate {s.successes}/{s.attempts} ({s.successes / s.attempts:.0%}); "
        f"attempts with a takeover {s.with_takeover}; rescue rate {s.rescued}/{s.with_takeover} "
        f"({s.rescue_rate:.0%}); takeovers per attempt {s.takeovers / s.attempts:.2f}; "
        f"human steps {s.human_steps / max(s.steps, 1):.0%} of {s.steps}; "
        f"{seconds / s.attempts:.2f} s per attempt"
    )


if __name__ == "__main__":
    main()
