from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from takeover.recorder.cameras import SyntheticCamera, SyntheticCameraConfig
from takeover.recorder.recorder import EpisodeRecorder, RecorderConfig
from takeover.recorder.recovery import pending_logs, recover_all
from takeover.recorder.testing import end_record, record_steps, start_record, step_record
from takeover.recorder.wal_reader import PERIOD_ERROR_STREAM
from takeover.storage.blobs import LocalBlobStore
from takeover.storage.episode_file import read_episode
from takeover.storage.errors import BlobNotFoundError, EpisodeFileError
from takeover.storage.schema import ControlSource, Event, EventKind, FrameBlob
from takeover.storage.store import Store


def _image(seed: int = 0) -> np.ndarray:
    cam = SyntheticCamera(SyntheticCameraConfig(width=64, height=48, paced=False, seed=seed))
    cam.connect()
    return cam.frame(3)


def test_finalized_episode_has_every_stream_and_no_log_left(local_or_s3_store: Store) -> None:
    store = local_or_s3_store
    rec = EpisodeRecorder(store)
    rec.on_episode_start(start_record("ep-1", rate_hz=50.0))
    rec.on_event(Event(EventKind.START, 0, time.monotonic()))
    t0 = time.monotonic()
    for i in range(30):
        if i == 10:
            rec.on_event(Event(EventKind.TAKEOVER, 10, t0 + 0.2, "test"))
        rec.on_step(step_record(i, t0 + 0.02 * i, {"front": _image(i)}, period_error=0.001 * i))
        rec.on_frame("wrist", _image(100 + i), t0 + 0.02 * i + 0.005)
        rec.record_sample("force", t0 + 0.01 * i, np.array([i, -i], dtype=np.float32))
    rec.on_episode_end(end_record())
    assert rec.saved == ["ep-1"] and rec.last_finalize_s < 0.5
    assert pending_logs(store) == [] and list(store.wal_dir.iterdir()) == []
    ep = store.read_episode("ep-1")
    assert ep.num_steps == 30 and ep.meta.outcome == "success" and ep.meta.seed == 7
    np.testing.assert_array_equal(ep.state[:, 0], np.arange(30, dtype=np.float32))
    assert ep.control_source[10] == int(ControlSource.HUMAN)
    assert [(e.kind, e.step) for e in ep.events] == [(EventKind.START, 0), (EventKind.TAKEOVER, 10)]
    front, wrist = ep.cameras["front"], ep.cameras["wrist"]
    assert isinstance(front.frames, FrameBlob) and len(front.frames) == 30 and front.dropped == 0
    np.testing.assert_array_equal(front.step_index, np.arange(30))
    # Free-running frames are placed at the last step observed before their capture.
    np.testing.assert_array_equal(wrist.step_index, np.arange(30))
    np.testing.assert_allclose(wrist.timestamps, t0 + 0.02 * np.arange(30) + 0.005)
    assert front.frames[0][:2] == b"\xff\xd8" and (front.height, front.width) == (48, 64)
    np.testing.assert_allclose(ep.streams[PERIOD_ERROR_STREAM].values, 0.001 * np.arange(30))
    assert ep.streams["force"].values.shape == (30, 2)
    assert ep.meta.extra["dropped_frames"] == {"front": 0, "wrist": 0}
    assert store.check().healthy and not store.get_episode("ep-1").recovered


def test_discard_leaves_nothing(local_or_s3_store: Store) -> None:
    store = local_or_s3_store
    rec = EpisodeRecorder(store)
    rec.on_episode_start(start_record("gone"))
    for i in range(5):
        rec.on_step(step_record(i, time.monotonic(), {"front": _image()}))
    rec.on_episode_end(end_record(discard=True))
    assert store.list_episodes() == [] and list(store.wal_dir.iterdir()) == []
    assert list(store.blobs.digests()) == [] and store.check().healthy
    record_steps(rec, "again", 5)  # re-record after a discard
    assert [e.episode_id for e in store.list_episodes()] == ["again"]


def test_full_encode_queue_counts_dropped_frames(store: Store) -> None:
    rec = EpisodeRecorder(store, RecorderConfig(queue_frames=1, encode_workers=1))
    rec.on_episode_start(start_record("busy"))
    big = np.zeros((480, 640, 3), dtype=np.uint8)
    for i in range(50):
        rec.on_step(step_record(i, time.monotonic(), {"front": big}))
    live = rec.dropped_frames()["front"]
    rec.on_episode_end(end_record())
    ep = store.read_episode("busy")
    cam = ep.cameras["front"]
    assert live > 0 and cam.dropped >= live and len(cam.frames) + cam.dropped == 50
    assert ep.meta.extra["dropped_frames"] == {"front": cam.dropped}


def test_unfinished_log_is_recovered_with_its_cut_time(store: Store) -> None:
    rec = EpisodeRecorder(store, RecorderConfig(sync_interval_s=0.05))
    record_steps(rec, "crashed", 40, image=_image(), end=False)
    t_last = time.monotonic()
    time.sleep(0.2)  # let the writer make it durable, then "crash": nobody calls on_episode_end
    wal = rec._wal
    assert wal is not None
    wal.release()  # the kernel drops a dead process's lock
    # Tear the tail of both logs as a crash mid-write would.
    for log_path in store.wal_dir.glob("crashed/*.log"):
        with open(log_path, "ab") as f:
            f.write(b"\x50\x00\x00\x00\x03garbage")
    with Store.open(store.root) as other:
        outcomes = recover_all(other)
        assert [(o.episode_id, o.action) for o in outcomes] == [("crashed", "recovered")]
        rec_row = other.get_episode("crashed")
        assert rec_row.recovered and rec_row.cut_at is not None
        assert rec_row.end_reason == "interrupted"  # nobody said how it went: left out of a default commit
        ep = other.read_episode("crashed")
        assert ep.num_steps == 40 and len(ep.cameras["front"].frames) == 40
        assert ep.meta.extra["recovered"] is True
        assert abs(ep.meta.extra["cut_at_monotonic"] - t_last) < 0.1
        assert ep.events[-1].kind is EventKind.END and "recovered" in ep.events[-1].reason
        assert other.check().healthy and pending_logs(other) == []


def test_log_that_ended_but_was_not_stored_is_finalized_as_complete(store: Store, tmp_path: Path) -> None:
    rec = EpisodeRecorder(store)
    rec.on_episode_start(start_record("ended"))
    for i in range(5):
        rec.on_step(step_record(i, time.monotonic(), {"front": _image()}))
    wal = rec._wal
    assert wal is not None
    wal.close(end_record(), {})  # end durable, then the process dies before finalize
    wal.release()  # (the kernel drops a dead process's lock)
    (outcome,) = recover_all(store)
    assert outcome.action == "finalized" and not store.get_episode("ended").recovered


def test_episode_file_indexes_the_frame_blob(store: Store) -> None:
    rec = EpisodeRecorder(store)
    record_steps(rec, "idx", 6, image=_image())
    assert isinstance(store.blobs, LocalBlobStore)
    path = store.blobs.path(store.get_episode("idx").blob_digest)
    ep = read_episode(path, store.blobs)
    assert len(list(ep.cameras["front"].frames)) == 6
    assert store.catalog.frame_blobs(["idx"]) == {"idx": [ep.cameras["front"].frames.digest]}  # type: ignore[attr-defined]
    with pytest.raises(EpisodeFileError, match="read it with its blob store"):
        read_episode(path)
    with pytest.raises(BlobNotFoundError):
        _ = read_episode(path, LocalBlobStore(store.root / "nowhere")).cameras["front"].frames[0]


def test_extra_policy_outputs_are_stored_as_streams(store: Store) -> None:
    from dataclasses import replace

    rec = EpisodeRecorder(store)
    rec.on_episode_start(start_record("ep-extras", rate_hz=50.0))
    t0 = time.monotonic()
    for i in range(12):
        step = step_record(i, t0 + 0.02 * i)
        if i % 4 == 0:
            step = replace(step, extras={"value": np.array([0.1 * i], dtype=np.float32)})
        rec.on_step(step)
    rec.on_episode_end(end_record())
    stream = store.read_episode("ep-extras").streams["policy.value"]
    np.testing.assert_allclose(stream.timestamps, [t0, t0 + 0.08, t0 + 0.16])
    np.testing.assert_allclose(stream.values.ravel(), [0.0, 0.4, 0.8], rtol=1e-6)


def test_recovery_leaves_a_log_that_is_still_being_written_alone(store: Store) -> None:
    """A second engine (or doctor --repair) on the same store must not 'recover' a live attempt."""
    live = EpisodeRecorder(store)
    live.on_episode_start(start_record("ep-live", rate_hz=50.0))
    t0 = time.monotonic()
    for i in range(5):
        live.on_step(step_record(i, t0 + 0.02 * i))
    assert pending_logs(store) == []
    assert recover_all(store) == []
    for i in range(5, 10):
        live.on_step(step_record(i, t0 + 0.02 * i))
    live.on_episode_end(end_record())
    ep = store.read_episode("ep-live")
    assert ep.num_steps == 10 and not ep.meta.extra.get("recovered")


def _clocked_steps(rec: EpisodeRecorder, episode_id: str, n: int) -> list[float]:
    """Steps from a station whose clock is 5 s ahead, rebased as RemoteStation does; returns the
    station's times."""
    from dataclasses import replace

    from takeover.app.station.clock import OffsetEstimate

    rec.on_episode_start(start_record(episode_id, rate_hz=50.0))
    t0 = time.monotonic()
    raw = []
    for i in range(n):
        t = t0 + 0.02 * i
        estimate = OffsetEstimate(5.0 + 1e-5 * i, 2e-4, 1e-4 + 1e-6 * i, t, 16 + i, 2e-4, 1e-3)
        step = replace(
            step_record(i, t, {"front": _image(i)}),
            image_times={"front": t - 0.004},
            station_t=t + estimate.offset_s,
            station_image_times={"front": t - 0.004 + estimate.offset_s},
            clock=estimate,
        )
        rec.on_step(step)
        raw.append(t + estimate.offset_s)
    return raw


def test_station_clock_streams_are_stored_finalized_or_recovered(store: Store) -> None:
    """A station's own times, the offset and its uncertainty are timed streams; the last estimate is
    the episode's ``station_clock``; a crashed log recovers the same."""
    rec = EpisodeRecorder(store, RecorderConfig(sync_interval_s=0.05))
    raw = {"clocked": _clocked_steps(rec, "clocked", 20)}
    rec.on_episode_end(end_record())
    raw["crashed"] = _clocked_steps(rec, "crashed", 20)
    time.sleep(0.2)  # durable; then "crash": nobody calls on_episode_end
    assert rec._wal is not None
    rec._wal.release()
    with Store.open(store.root) as other:
        assert [o.action for o in recover_all(other)] == ["recovered"]
        episodes = [other.read_episode("clocked"), other.read_episode("crashed")]
    for ep in episodes:
        time_, offset, bound = (ep.streams[f"station_clock.{n}"] for n in ("time", "offset", "uncertainty"))
        np.testing.assert_array_equal(time_.timestamps, ep.timestamps)
        np.testing.assert_allclose(time_.values, raw[ep.meta.episode_id], rtol=0, atol=1e-9)
        np.testing.assert_allclose(offset.values, 5.0 + 1e-5 * np.arange(20), rtol=0, atol=1e-9)
        np.testing.assert_allclose(bound.values, 1e-4 + 1e-6 * np.arange(20))
        images = ep.streams["station_clock.image_time.front"]
        assert images.values.shape == (20,)  # one number per image (a 0-d sample each)
        np.testing.assert_allclose(images.timestamps, ep.timestamps - 0.004)
        np.testing.assert_allclose(images.values - images.timestamps, offset.values, rtol=0, atol=1e-9)
        np.testing.assert_array_equal(ep.cameras["front"].timestamps, images.timestamps)
        final = ep.meta.extra["station_clock"]
        assert final["samples"] == 35 and final["offset_s"] == pytest.approx(5.0 + 19e-5)


def test_steps_on_the_engines_clock_have_no_station_clock_streams(store: Store) -> None:
    record_steps(EpisodeRecorder(store), "local", 5, image=_image())
    ep = store.read_episode("local")
    assert not [name for name in ep.streams if name.startswith("station_clock")]
    assert "station_clock" not in ep.meta.extra
