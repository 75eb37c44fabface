"""The learning loop: collect with the scripted operator, commit, train, evaluate, round after round.

Run: ``MUJOCO_GL=egl python bench/learning_loop.py [--rounds 3] [--attempts 30] [--eval-seeds 50]
[--epochs 200] [--workdir DIR] [--plot docs/learning_loop.png]``

Round 0 is the shipped policy. Each round R = 1, 2, ...:

1. ``--attempts`` attempts on new collection seeds (``--first-seed`` on, never in the range reserved
   for evaluation), recorded through the real loop and recorder (``takeover run --headless
   --no-pacing --operator scripted``, the station without cameras: the policy reads the state
   only), with the scripted operator taking over when the policy stalls or drifts. The policy that
   collects is round R-1's ``recap`` policy (round 1: the shipped one), served by one standalone
   policy server for the whole run (``takeover policy serve``) and deployed to it between rounds
   with ``takeover policy deploy --endpoint``; every collected attempt must record that policy's id;
2. a version of all the data so far, frozen with derived training labels (``takeover data commit
   round-R --derived training_labels``);
3. ``bc``, ``filtered-bc`` and ``recap`` trained on it (``takeover.app.policy.methods``, one thread);
4. every method evaluated on the same ``--eval-seeds`` seeds from the start of the reserved
   evaluation range: no operator, unpaced, no rendering, each attempt with the task's own limit.

Prints, per round and method: the evaluation success rate with its 95 % Wilson interval, and for
the round's collection the interventions (takeovers) per attempt, the human-step fraction, the
operator's rescue rate; the training time of each method. Then a one-sided two-proportion z-test of
``recap`` in the last round against round 0, and writes the plot.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from takeover.app.control.loop import ControlLoop, LoopConfig
from takeover.app.control.pacing import Clock
from takeover.app.policy.server import Predictor
from takeover.app.runtime.config import SeedsSection
from takeover.app.station.metaworld_sim import MetaWorldConfig, MetaWorldStation, task_time_limit_s
from takeover.storage.schema import ControlSource, EventKind

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scripted_operator import InProcessPolicy  # a sibling bench script

METHODS = ("bc", "filtered-bc", "recap")
NAMED = "recap"
"""The method named in advance; the others are the baselines."""
TASK = "pick-place-v3"
Z95 = 1.959963984540054


def wilson(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95 % for the default ``z``)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def z_test_greater(s1: int, n1: int, s0: int, n0: int) -> tuple[float, float]:
    """One-sided two-proportion z-test (pooled) of ``s1/n1 > s0/n0``: ``(z, p)``."""
    pooled = (s1 + s0) / (n1 + n0)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n0))
    if se == 0:  # all successes or all failures on both sides: equal proportions
        return 0.0, 0.5
    z = (s1 / n1 - s0 / n0) / se
    return z, 0.5 * math.erfc(z / math.sqrt(2))


@dataclass(frozen=True)
class Collection:
    attempts: int
    successes: int
    takeovers: int
    with_takeover: int
    rescued: int
    steps: int
    human_steps: int
    seconds: float
    policy_id: str
    """The policy id every attempt of the collection recorded."""


@dataclass(frozen=True)
class Evaluation:
    method: str
    policy_id: str
    successes: int
    seeds: int
    train_seconds: float


def takeover(*args: str, store: Path) -> str:
    env = {**os.environ, "TAKEOVER_STORE": str(store), "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    proc = subprocess.run(
        [sys.executable, "-m", "takeover.app.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        raise SystemExit(f"takeover {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


@contextlib.contextmanager
def policy_server(work: Path) -> Iterator[str]:
    """A standalone policy server (`takeover policy serve`, the shipped checkpoint) on a free
    loopback port for the whole run; yields its endpoint. Its log goes to ``work/policy-server.log``."""
    log_path = work / "policy-server.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "takeover.app.cli", "policy", "serve", "--endpoint", "tcp://127.0.0.1:0"],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
    try:
        deadline = time.monotonic() + 120
        while " serving on " not in log_path.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the policy server did not start:\n{log_path.read_text()}")
            time.sleep(0.1)
        line = next(x for x in log_path.read_text().splitlines() if " serving on " in x)
        yield line.rsplit(" ", 1)[1].strip()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def deploy(endpoint: str, checkpoint: Path, store: Path) -> str:
    """`takeover policy deploy CHECKPOINT --endpoint URL`; the policy id the server now serves."""
    out = takeover("policy", "deploy", str(checkpoint), "--endpoint", endpoint, store=store)
    return out.split(" now serves ", 1)[1].split()[0]


def collect(store: Path, config: Path, endpoint: str, seeds: range) -> Collection:
    """Run ``seeds`` through `takeover run --headless` with the scripted operator and the policy the
    server at ``endpoint`` serves; figures from the store."""
    from takeover.storage.store import Store

    t0 = time.perf_counter()
    args = ["run", "--headless", "--no-pacing", "--operator", "scripted", "--config", str(config)]
    args += ["--episodes", str(len(seeds)), "--seed", str(seeds.start), "--policy-url", endpoint]
    takeover(*args, store=store)
    seconds = time.perf_counter() - t0
    with Store.open(store) as st:
        records = [r for r in st.list_episodes() if r.seed in seeds]
        episodes = [st.read_episode(r.episode_id) for r in records]
    assert len(episodes) == len(seeds), f"{len(episodes)} of {len(seeds)} attempts recorded"
    ids = {r.policy_id for r in records}
    assert len(ids) == 1, f"the attempts of one collection recorded several policy ids: {sorted(ids)}"
    takeovers = [sum(e.kind is EventKind.TAKEOVER for e in ep.events) for ep in episodes]
    return Collection(
        attempts=len(episodes),
        successes=sum(bool(ep.meta.success) for ep in episodes),
        takeovers=sum(takeovers),
        with_takeover=sum(t > 0 for t in takeovers),
        rescued=sum(bool(ep.meta.success) for ep, t in zip(episodes, takeovers, strict=True) if t),
        steps=sum(ep.num_steps for ep in episodes),
        human_steps=sum(int((ep.control_source == int(ControlSource.HUMAN)).sum()) for ep in episodes),
        seconds=seconds,
        policy_id=ids.pop(),
    )


def evaluate(predictor: Predictor, seeds: range) -> int:
    """Successes of ``predictor`` alone on ``seeds``: no operator, unpaced, no camera."""
    config = LoopConfig(paced=False)
    limit = config.attempt_steps(task_time_limit_s(TASK))
    station_config = MetaWorldConfig(
        task=TASK, cameras=(), rate_hz=config.rate_hz, max_steps=max(MetaWorldConfig().max_steps, limit)
    )
    with MetaWorldStation(station_config) as station:
        loop = ControlLoop(station, InProcessPolicy(predictor), [], [], config, Clock())
        return sum(loop.run_episode(seed=seed).success for seed in seeds)


def train(method: str, tag: str, store: Path, out: Path, epochs: int) -> float:
    """Train ``method`` on ``tag``; write ``out``; return the training time (s)."""
    from takeover.app.policy.checkpoint import save_checkpoint
    from takeover.app.policy.methods import RecapConfig, pull_for, train_method
    from takeover.app.policy.train import TrainConfig

    pulled = pull_for(method, tag, str(store))
    result = train_method(method, pulled.items, TrainConfig(epochs=epochs), RecapConfig(value_epochs=epochs))
    save_checkpoint(result.policy.model, out, {**result.record, **pulled.record(tag)}, result.value)
    return result.policy.seconds


def plot(rounds: list[list[Evaluation]], collections: list[Collection], sizes: str, out: Path) -> None:
    """Success rate (95 % Wilson interval) of each method against the round; takeovers per attempt."""
    w, h, left, right, top, bottom = 1000, 560, 80, 220, 60, 70
    img = np.full((h, w, 3), 248, dtype=np.uint8)
    x0, x1, y0, y1 = left, w - right, top, h - bottom
    n = len(rounds)
    colors = {"bc": (200, 120, 40), "filtered-bc": (40, 150, 230), "recap": (60, 160, 40)}
    font = cv2.FONT_HERSHEY_SIMPLEX

    def px(r: float, rate: float) -> tuple[int, int]:
        x = x0 + (r + 0.5) / n * (x1 - x0)
        return round(x), round(y1 - rate * (y1 - y0))

    cv2.rectangle(img, (x0, y0), (x1, y1), (255, 255, 255), -1)
    for k in range(11):
        y = px(0, k / 10)[1]
        cv2.line(img, (x0, y), (x1, y), (225, 225, 225), 1)
        cv2.putText(img, f"{10 * k}%", (x0 - 50, y + 5), font, 0.45, (30, 30, 30), 1, cv2.LINE_AA)
    for r in range(n):
        x = px(r, 0)[0]
        cv2.putText(img, f"round {r}", (x - 30, y1 + 22), font, 0.5, (30, 30, 30), 1, cv2.LINE_AA)
        if r > 0:
            c = collections[r - 1]
            label = f"{c.takeovers / c.attempts:.2f} takeovers/att."
            cv2.putText(img, label, (x - 70, y1 + 44), font, 0.42, (90, 90, 90), 1, cv2.LINE_AA)
    cv2.rectangle(img, (x0, y0), (x1, y1), (30, 30, 30), 1)
    title = f"evaluation success rate, 95 % Wilson interval ({sizes})"
    cv2.putText(img, title, (x0, y0 - 22), font, 0.55, (30, 30, 30), 1, cv2.LINE_AA)
    for i, method in enumerate(METHODS):
        color = colors[method]
        offset = (i - 1) * 0.06
        points = []
        for r, evals in enumerate(rounds):
            e = evals[0] if r == 0 else next(e for e in evals if e.method == method)
            lo, hi = wilson(e.successes, e.seeds)
            p = px(r + offset, e.successes / e.seeds)
            cv2.line(img, px(r + offset, lo), px(r + offset, hi), color, 2, cv2.LINE_AA)
            cv2.circle(img, p, 5, color, -1, cv2.LINE_AA)
            points.append(p)
        cv2.polylines(img, [np.array(points, np.int32)], False, color, 2, cv2.LINE_AA)
        ly = y0 + 20 + 26 * i
        cv2.line(img, (x1 + 20, ly - 5), (x1 + 50, ly - 5), color, 3)
        cv2.putText(img, method, (x1 + 58, ly), font, 0.5, (30, 30, 30), 1, cv2.LINE_AA)
    note = "round 0: the shipped policy (all methods)"
    cv2.putText(img, note, (x1 + 10, y0 + 20 + 26 * 3 + 10), font, 0.38, (60, 60, 60), 1, cv2.LINE_AA)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(out), img):
        raise SystemExit(f"could not write {out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--attempts", type=int, default=30, help="collection attempts per round")
    ap.add_argument("--eval-seeds", type=int, default=50, help="held-out seeds (from the reserved range)")
    ap.add_argument("--epochs", type=int, default=200, help="policy (and recap value model) epochs")
    ap.add_argument("--first-seed", type=int, default=2000, help="first collection seed")
    ap.add_argument("--workdir", default="", help="where the store and checkpoints go (default: a temp dir)")
    ap.add_argument("--plot", default="docs/learning_loop.png")
    ap.add_argument(
        "--guidance-sweep",
        default="",
        metavar="A,B,...",
        help="also evaluate the last round's recap policy with these guidance weights (same weights, "
        "the weight changed at run time; e.g. 1.5,2,3)",
    )
    args = ap.parse_args()
    try:
        sweep = [float(x) for x in args.guidance_sweep.split(",") if x.strip()]
    except ValueError:
        ap.error(f"--guidance-sweep takes numbers separated by commas, got {args.guidance_sweep!r}")
    if any(not 0.0 <= g <= 10.0 for g in sweep):
        ap.error(f"guidance weights must be in 0..10, got {args.guidance_sweep}")
    for name in ("rounds", "attempts", "eval_seeds", "epochs"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.first_seed < 0:
        ap.error(f"--first-seed must be 0 or more, got {args.first_seed}")
    from takeover.app.policy import default_checkpoint_path
    from takeover.app.policy.loader import load_policy_from

    reserved = SeedsSection().reserved
    eval_seeds = range(reserved.first, reserved.first + args.eval_seeds)
    last_collected = args.first_seed + args.rounds * args.attempts - 1
    if args.first_seed <= reserved.last and last_collected >= reserved.first:
        overlap = f"{args.first_seed}..{last_collected}"
        raise SystemExit(f"collection seeds {overlap} overlap the range reserved for evaluation {reserved}")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="learning-loop-"))
    store, config = work / "store", work / "collect.toml"
    work.mkdir(parents=True, exist_ok=True)
    config.write_text("[station]\ncameras = []\n")
    sizes = (
        f"{args.rounds} rounds x {args.attempts} attempts, {args.eval_seeds} eval seeds "
        f"{eval_seeds.start}..{eval_seeds.stop - 1}, {args.epochs} epochs"
    )
    print(f"{TASK}: {sizes}; collection seeds from {args.first_seed}; work in {work}", flush=True)

    t0 = time.perf_counter()
    shipped = load_policy_from(default_checkpoint_path())
    base = Evaluation("shipped", shipped.policy_id, evaluate(shipped, eval_seeds), len(eval_seeds), 0.0)
    rounds: list[list[Evaluation]] = [[base]]
    collections: list[Collection] = []
    print(f"round 0: shipped {base.policy_id}: {_rate(base)} ({time.perf_counter() - t0:.0f} s)", flush=True)
    with policy_server(work) as endpoint:
        print(f"collection policy server on {endpoint}", flush=True)
        _rounds(args, work, store, config, endpoint, eval_seeds, rounds, collections)
    _summary(args, sizes, t0, rounds, collections)
    if sweep:
        guidance_sweep(work / f"round-{args.rounds}-{NAMED}.safetensors", sweep, eval_seeds, rounds[0][0])


def guidance_sweep(checkpoint: Path, weights: list[float], eval_seeds: range, base: Evaluation) -> None:
    """Evaluate ``checkpoint`` (a recap policy) with other run-time guidance weights: the same
    network and value model, saved again with the weight changed (so each has its own policy id)."""
    from dataclasses import replace

    from takeover.app.policy.checkpoint import read_checkpoint, save_checkpoint
    from takeover.app.policy.model import Policy

    print(f"\nguidance sweep of {checkpoint.name} on the same {len(eval_seeds)} held-out seeds")
    model, value, _, training = read_checkpoint(checkpoint)
    trained = model.config
    for weight in weights:
        model.config = replace(trained, guidance=weight)
        out = checkpoint.with_name(f"{checkpoint.stem}-guidance-{weight:g}.safetensors")
        record = {**training, "guidance": weight}
        predictor = Policy(model, save_checkpoint(model, out, record, value), record, value)
        e = Evaluation(
            f"{NAMED} a={weight:g}", predictor.policy_id, evaluate(predictor, eval_seeds), len(eval_seeds), 0
        )
        z, p = z_test_greater(e.successes, e.seeds, base.successes, base.seeds)
        print(f"  guidance {weight:<4g} {_rate(e)}  (vs round 0: z = {z:.2f}, p = {p:.3f})", flush=True)


def _rounds(
    args: argparse.Namespace,
    work: Path,
    store: Path,
    config: Path,
    endpoint: str,
    eval_seeds: range,
    rounds: list[list[Evaluation]],
    collections: list[Collection],
) -> None:
    """Collect, commit, train and evaluate, round after round (rounds and collections are appended)."""
    from takeover.app.policy.loader import load_policy_from

    collector = rounds[0][0].policy_id
    for r in range(1, args.rounds + 1):
        seeds = range(args.first_seed + (r - 1) * args.attempts, args.first_seed + r * args.attempts)
        c = collect(store, config, endpoint, seeds)
        if c.policy_id != collector:
            raise SystemExit(f"round {r} was collected by {c.policy_id}, not the deployed {collector}")
        collections.append(c)
        print(
            f"round {r}: collected seeds {seeds.start}..{seeds.stop - 1} with {c.policy_id}: "
            f"{c.successes}/{c.attempts} succeeded; {c.takeovers / c.attempts:.2f} takeovers per attempt; "
            f"human steps {c.human_steps / max(c.steps, 1):.1%} of {c.steps}; rescue rate "
            f"{c.rescued}/{c.with_takeover}; {c.seconds:.0f} s",
            flush=True,
        )
        tag = f"round-{r}"
        takeover("data", "commit", tag, "--derived", "training_labels", store=store)
        evals = []
        for method in METHODS:
            out = work / f"{tag}-{method}.safetensors"
            seconds = train(method, tag, store, out, args.epochs)
            predictor = load_policy_from(out)
            successes = evaluate(predictor, eval_seeds)
            e = Evaluation(method, predictor.policy_id, successes, len(eval_seeds), seconds)
            evals.append(e)
            print(f"  {method:<12} trained in {e.train_seconds:5.1f} s: {_rate(e)}", flush=True)
        rounds.append(evals)
        if r < args.rounds:  # the next round collects with this round's recap policy
            collector = deploy(endpoint, work / f"{tag}-{NAMED}.safetensors", store)
            print(f"  deployed {collector} ({NAMED}) to the collection policy server", flush=True)


def _summary(
    args: argparse.Namespace,
    sizes: str,
    t0: float,
    rounds: list[list[Evaluation]],
    collections: list[Collection],
) -> None:
    base = rounds[0][0]
    print(f"\nsummary ({sizes}; {time.perf_counter() - t0:.0f} s in all)")
    head = f"{'round':<6}{'method':<13}{'success (95 % CI)':<28}{'train s':>8}"
    print(f"{head}{'takeovers/att':>15}{'human steps':>13}")
    for r, evals in enumerate(rounds):
        c = collections[r - 1] if r else None
        for e in evals:
            per = f"{c.takeovers / c.attempts:.2f}" if c else "-"
            human = f"{c.human_steps / max(c.steps, 1):.1%}" if c else "-"
            print(f"{r:<6}{e.method:<13}{_rate(e):<28}{e.train_seconds:>8.1f}{per:>15}{human:>13}")
    helped = sum(c.with_takeover for c in collections)
    rescued = sum(c.rescued for c in collections)
    print(f"scripted operator rescue rate: {rescued}/{helped} attempts with a takeover succeeded")
    last = next(e for e in rounds[-1] if e.method == NAMED)
    z, p = z_test_greater(last.successes, last.seeds, base.successes, base.seeds)
    print(
        f"{NAMED} round {args.rounds} vs round 0: {last.successes}/{last.seeds} vs "
        f"{base.successes}/{base.seeds}, "
        f"one-sided two-proportion z-test z = {z:.2f}, p = {p:.3f}"
    )
    plot(rounds, collections, sizes, Path(args.plot))
    print(f"wrote {args.plot}")


def _rate(e: Evaluation) -> str:
    lo, hi = wilson(e.successes, e.seeds)
    return f"{e.successes}/{e.seeds} = {e.successes / e.seeds:.0%} [{lo:.0%}, {hi:.0%}]"


if __name__ == "__main__":
    main()
