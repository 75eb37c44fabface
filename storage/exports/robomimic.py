"""A version as a robomimic HDF5 dataset (``demo.hdf5``), read by robomimic as it is.

Layout::

    data/                 attrs total (steps), env_args (JSON)
      demo_<i>/           attrs num_samples, episode_id, label, interventions, start_step
        actions (T, A) float32        rewards (T,) float32 (1 at the last step of a success)
        dones (T,) uint8 (1 at the last step)         states (T, S) float32
        obs/<key>, next_obs/<key>     state, proposed_action (0 where there was none),
                                      proposed_action_valid (T, 1), control_source (T, 1),
                                      intervention (T, 1), <camera>_image (T, H, W, 3) uint8,
                                      <camera>_image_valid (T, 1); with pinned training labels
                                      control_class (T, 1) int64, value_target (T, 1) float32,
                                      improvement (T, 1) bool
    mask/<filter>         demo names (bytes): success, near_success, failure,
                          has_intervention, human_only

``next_obs`` is ``obs`` one step on (the last step repeats). The training labels a version pins
(:mod:`takeover.storage.derived`) are observations like the control source: robomimic's loaders
read per-step data of a demo from ``obs`` by the keys a config names (``obs_keys``), and a version
that pins none is written as before. A step before a camera's first frame
has zeros in ``<camera>_image`` and false in ``<camera>_image_valid``, and the export says how many
such steps there are.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

from takeover.storage.exports.common import (
    Chosen,
    EarlySteps,
    ExportSettings,
    check_uniform,
    frames_at_steps,
    human_steps,
    interventions,
    label_of,
    uniform_cameras,
)
from takeover.storage.jpeg import decode_rgb
from takeover.storage.progress import progress_bar
from takeover.storage.store import Store

FILE = "demo.hdf5"
MAIN = FILE
"""What the command points to when the export is done."""


def write(
    store: Store,
    chosen: Chosen,
    folder: Path,
    settings: ExportSettings | None = None,
    *,
    progress: bool = False,
    say: Callable[[str], None] = print,
) -> int:
    """Write ``chosen`` into ``folder / demo.hdf5``; returns the number of steps written.
    (``settings`` has nothing for this format: images are stored as uint8 arrays.)"""
    episodes = [store.read_episode(e.episode_id) for e in chosen.entries]
    check_uniform(episodes, "robomimic HDF5")
    uniform_cameras(episodes, "robomimic HDF5", "image key")
    masks: dict[str, list[str]] = {
        k: [] for k in ("success", "near_success", "failure", "has_intervention", "human_only")
    }
    total = 0
    early = EarlySteps()
    env_args = {
        "env_name": episodes[0].meta.task or episodes[0].meta.robot,
        "type": 2,  # robomimic's EnvType.GYM_TYPE: an environment robomimic does not build itself
        "env_kwargs": {
            "robot": episodes[0].meta.robot,
            "rate_hz": episodes[0].meta.rate_hz,
            "source": f"takeover version {chosen.digest} (tag {chosen.tag})",
        },
    }
    with (
        h5py.File(folder / FILE, "w") as f,
        progress_bar("exporting episodes", len(episodes), enabled=progress, unit="episodes") as advance,
    ):
        data = f.create_group("data")
        for i, (entry, ep) in enumerate(zip(chosen.entries, episodes, strict=True)):
            start, stop = entry.start, entry.stop
            n = stop - start
            name = f"demo_{i}"
            g = data.create_group(name)
            label = label_of(entry)
            source = np.asarray(ep.control_source)[start:stop]
            human = human_steps(source)
            taken = interventions(ep, start, stop)
            g.attrs.update(
                num_samples=n,
                episode_id=ep.meta.episode_id,
                label=label,
                interventions=taken,
                start_step=start,
            )
            g.create_dataset("actions", data=np.asarray(ep.action, dtype=np.float32)[start:stop])
            g.create_dataset("states", data=np.asarray(ep.state, dtype=np.float32)[start:stop])
            rewards = np.zeros(n, dtype=np.float32)
            rewards[-1] = 1.0 if label == "success" else 0.0
            g.create_dataset("rewards", data=rewards)
            dones = np.zeros(n, dtype=np.uint8)
            dones[-1] = 1
            g.create_dataset("dones", data=dones)
            proposed = np.asarray(ep.proposed_action, dtype=np.float32)[start:stop]
            proposed_valid = np.asarray(~np.isnan(proposed).any(axis=1), dtype=bool)
            # robomimic's algorithms index every observation as (batch, time, feature): single
            # values get a feature axis of one; NaN (no proposal) would poison its normalisation.
            obs: dict[str, np.ndarray] = {
                "state": np.asarray(ep.state, dtype=np.float32)[start:stop],
                "proposed_action": np.nan_to_num(proposed, nan=0.0),
                "proposed_action_valid": proposed_valid[:, None],
                "control_source": source.astype(np.int64)[:, None],
                "intervention": human[:, None],
            }
            if chosen.training is not None:
                obs.update({k: v[:, None] for k, v in chosen.training.steps[i].items()})
            for camera in sorted(ep.cameras):
                at, h, w = frames_at_steps(ep, camera, start, stop)
                images = np.zeros((n, h, w, 3), dtype=np.uint8)
                frames = ep.cameras[camera].frames
                for k, frame in enumerate(at):
                    if frame is not None:
                        images[k] = decode_rgb(frames[frame])
                valid = np.array([a is not None for a in at])
                early.add(camera, ep.meta.episode_id, valid)
                obs[f"{camera}_image"] = images
                obs[f"{camera}_image_valid"] = valid[:, None]
            for group, shift in (("obs", 0), ("next_obs", 1)):
                og = g.create_group(group)
                for key, values in obs.items():
                    shown = values if not shift else np.concatenate([values[1:], values[-1:]])
                    chunks = (1, *values.shape[1:]) if values.ndim == 4 else None
                    og.create_dataset(key, data=shown, chunks=chunks)
            total += n
            masks[label].append(name)
            if taken:
                masks["has_intervention"].append(name)
            if human.all():
                masks["human_only"].append(name)
            advance(1)
        data.attrs["total"] = total
        data.attrs["env_args"] = json.dumps(env_args)
        mask = f.create_group("mask")
        for key, names in masks.items():
            mask.create_dataset(key, data=np.array(names, dtype="S"))
    early.report(say, "zeros", lambda camera: f"{camera}_image_valid")
    return total
