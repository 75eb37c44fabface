"""One small round of the learning loop end to end, through the real pieces (docs/learning.md):
collect attempts with the scripted operator (`takeover run --headless`: the real simulator, policy
server process, loop and recorder), commit a version with derived training labels, train each
method for a few epochs (`takeover policy train`), deploy a trained checkpoint to a running policy
server (`takeover policy deploy`), and evaluate it on seeds of the range reserved for evaluation.

What is checked against what:
- collection refuses a seed of the reserved evaluation range;
- each checkpoint names the version digest the tag resolves to, and the training labels' parameter
  digest equals the one the version pins for every episode (the labels reached the trainer);
- after the deploy, the evaluation attempts record the deployed checkpoint's policy id, run on the
  first reserved seeds, and the first proposed chunk equals the deployed policy's own answer.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from takeover.app.runtime.config import SeedsSection
from takeover.storage.store import Store

from .test_headless_run import takeover

pytestmark = [pytest.mark.sim, pytest.mark.slow]

ATTEMPTS = 3
FIRST_SEED = 1024
"""Collection seeds where the shipped policy needs the scripted operator (test_scripted_rescue.py)."""
EVALUATION = SeedsSection().reserved
"""The range reserved for evaluation (collection refuses it)."""
EVAL_ATTEMPTS = 2
METHODS = ("bc", "filtered-bc", "recap")
TAG = "round-1"


@pytest.fixture(scope="module")
def round_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with one round collected and committed, and a checkpoint of each method trained on it."""
    root = tmp_path_factory.mktemp("round")
    store = root / "store"
    config = root / "no-cameras.toml"
    config.write_text("[station]\ncameras = []\n")  # the policy reads the state only
    collect = ("--operator", "scripted", "--no-pacing", "--config", str(config), "--seed", str(FIRST_SEED))
    takeover("run", "--headless", *collect, "--episodes", str(ATTEMPTS), store=store)
    takeover("data", "commit", TAG, "--derived", "training_labels", store=store)
    for method in METHODS:
        out = root / f"{method}.safetensors"
        train = ("--method", method, "--tag", TAG, "--out", str(out), "--epochs", "3", "--value-epochs", "3")
        proc = takeover("policy", "train", *train, store=store)
        assert f"({method})" in proc.stdout
    return root


@pytest.fixture()
def policy_server(tmp_path: Path) -> Iterator[str]:
    """A standalone policy server on a free port (the shipped checkpoint), stopped afterwards."""
    env = {**os.environ, "TAKEOVER_STORE": str(tmp_path)}
    args = ("policy", "serve", "--endpoint", "tcp://127.0.0.1:0")
    proc = subprocess.Popen(
        [sys.executable, "-m", "takeover.app.cli", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert " serving on " in line, line
        yield line.rsplit(" ", 1)[1].strip()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stderr is not None:
            proc.stderr.close()


def test_collection_refuses_a_seed_reserved_for_evaluation(tmp_path: Path) -> None:
    proc = takeover(
        "run", "--headless", "--no-pacing", "--seed", str(EVALUATION.first), store=tmp_path, check=False
    )
    assert proc.returncode != 0 and "reserved for evaluation" in proc.stderr
    assert not (tmp_path / "episodes").exists() or not any((tmp_path / "episodes").iterdir())


def test_the_round_was_collected_on_collection_seeds_with_corrections(round_dir: Path) -> None:
    with Store.open(round_dir / "store") as store:
        records = store.list_episodes()
        episodes = [store.read_episode(r.episode_id) for r in records]
    assert sorted(r.seed for r in records) == list(range(FIRST_SEED, FIRST_SEED + ATTEMPTS))
    assert all(r.seed not in EVALUATION for r in records)
    assert any((ep.control_source == 1).any() for ep in episodes), "no human correction collected"


def test_each_checkpoint_names_its_version_and_training_labels(round_dir: Path) -> None:
    from takeover.annotation.training_params import TrainingLabelParams
    from takeover.app.policy.checkpoint import read_checkpoint
    from takeover.storage.derived import TRAINING_LABELS

    with Store.open(round_dir / "store") as store:
        version = store.resolve(TAG)
    pinned = {dict(e.derivations).get(TRAINING_LABELS) for e in version.manifest.episodes}
    assert len(version.manifest.episodes) == ATTEMPTS and None not in pinned
    for method in METHODS:
        _, value, _, record = read_checkpoint(round_dir / f"{method}.safetensors")
        assert record["method"] == method and record["tag"] == TAG
        assert record["version"] == version.digest
        labels = record["training_labels"]
        assert labels["params_digest"] == TrainingLabelParams().digest()
        assert labels["batch_episodes"] == ATTEMPTS
        assert (value is not None) is (method == "recap")
    recap = read_checkpoint(round_dir / "recap.safetensors")[3]
    assert recap["positive_samples"] > 0 and recap["indicator"]["non_human_steps"] > 0


def test_the_deployed_policy_drives_the_next_attempts_and_is_recorded(
    round_dir: Path, policy_server: str, tmp_path: Path
) -> None:
    from takeover.app.policy.checkpoint import load_policy

    checkpoint = round_dir / "recap.safetensors"
    deployed = load_policy(checkpoint)
    out = takeover("policy", "deploy", str(checkpoint), "--endpoint", policy_server, store=tmp_path)
    assert f"now serves {deployed.policy_id}" in out.stdout
    store = tmp_path / "eval"
    evaluate = ("--no-pacing", "--evaluation", "--config", str(round_dir / "no-cameras.toml"))
    takeover(
        "run",
        "--headless",
        *evaluate,
        "--episodes",
        str(EVAL_ATTEMPTS),
        "--policy-url",
        policy_server,
        store=store,
    )
    with Store.open(store) as st:
        records = sorted(st.list_episodes(), key=lambda r: r.seed)
        episodes = [st.read_episode(r.episode_id) for r in records]
    assert [r.seed for r in records] == [EVALUATION.first + i for i in range(EVAL_ATTEMPTS)]
    assert all(r.policy_id == deployed.policy_id for r in records)
    for ep in episodes:
        assert not (ep.control_source == 1).any(), "nobody takes over in evaluation"
        chunk = deployed.predict(ep.state[0])
        np.testing.assert_allclose(ep.proposed_action[0], chunk[0], atol=1e-5)
