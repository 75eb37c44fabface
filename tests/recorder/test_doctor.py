from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from takeover.app.cli import main
from takeover.recorder.cameras import SyntheticCamera, SyntheticCameraConfig
from takeover.recorder.recorder import EpisodeRecorder, RecorderConfig
from takeover.recorder.testing import record_steps
from takeover.storage.blobs import LocalBlobStore
from takeover.storage.schema import FrameBlob
from takeover.storage.store import Store


def _image() -> np.ndarray:
    cam = SyntheticCamera(SyntheticCameraConfig(width=32, height=24, paced=False))
    cam.connect()
    return cam.frame(0)


def test_doctor_reports_then_repairs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "store"
    with Store.create(root) as store:
        rec = EpisodeRecorder(store, RecorderConfig(sync_interval_s=0.05))
        record_steps(rec, "good", 10, image=_image())
        record_steps(rec, "cut", 10, image=_image(), end=False)  # the process "dies" here
        time.sleep(0.2)
        assert rec._wal is not None
        rec._wal.release()  # as the kernel does for a dead process
        orphan = store.blobs.put_bytes(b"left by an interrupted add")
        assert isinstance(store.blobs, LocalBlobStore)
        two_days_ago = time.time() - 2 * 86400
        os.utime(store.blobs.path(orphan), (two_days_ago, two_days_ago))  # older than the grace period
        in_flight = store.blobs.put_bytes(b"another station's episode, not cataloged yet")
        (root / "tmp").mkdir(exist_ok=True)
        (root / "tmp" / ".x-123.h5").write_bytes(b"partial")
    assert main(["doctor", "--store", str(root)]) == 1
    out = capsys.readouterr().out
    assert "unfinished recording: cut" in out
    assert f"orphan blob {orphan[:12]}: referenced by nothing in the catalog" in out
    assert f"in flight: blob {in_flight[:12]} written 0 s ago" in out
    assert "temporary file" in out and "problem(s)" in out
    assert main(["doctor", "--store", str(root), "--repair"]) == 0
    out = capsys.readouterr().out
    assert "recovered cut: 10 steps" in out and f"removed orphan blob {orphan}" in out
    assert f"removed orphan blob {in_flight}" not in out and store.blobs.has(in_flight)
    assert "is healthy" in out
    assert main(["data", "list", "--store", str(root)]) == 0
    rows = {ln.split()[0]: ln for ln in capsys.readouterr().out.splitlines()[1:]}
    assert rows["good"].endswith("-") and "cut 20" in rows["cut"]
    assert main(["doctor", "--store", str(root)]) == 0


def test_doctor_finds_corrupt_and_missing_blobs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "store"
    with Store.create(root) as store:
        rec = EpisodeRecorder(store)
        record_steps(rec, "a", 5, image=_image())
        record_steps(rec, "b", 5, image=_image())
        frames = store.read_episode("a").cameras["front"].frames
        assert isinstance(frames, FrameBlob) and isinstance(store.blobs, LocalBlobStore)
        blob = store.blobs.path(frames.digest)
        blob.chmod(0o644)
        with open(blob, "r+b") as f:
            f.seek(40)
            f.write(b"\x00\x01\x02")
        store.commit("v1", ["b"])
        store.blobs.path(store.get_episode("b").blob_digest).unlink()
        (b_frames,) = store.catalog.frame_blobs(["b"])["b"]
    assert main(["doctor", "--store", str(root), "--repair"]) == 1
    out = capsys.readouterr().out
    assert "episode a: frame blob" in out and "corrupt" in out
    # The store part is fsck's: the version that holds b is damaged too, and the way out is said.
    assert "version " in out and "episode b: its data is damaged" in out and "restore it from a copy" in out
    assert "1 versions, 1 tags checked" in out
    assert "episode b: file" in out and "missing" in out
    # The catalog lists b's frame blob, so it is no orphan though b's file is gone: it is kept.
    assert "orphan" not in out and (root / "blobs" / "sha256" / b_frames[:2] / b_frames).is_file()
    assert main(["doctor", "--store", str(tmp_path / "none")]) == 2
