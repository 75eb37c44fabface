"""Camera streams transcoded to video: frame for frame the recorded stream, in order, within a stated
pixel tolerance, with random access; stored in a local folder or on a real S3 endpoint; recorded in
the catalog by migration 0004; pinned by versions; transcoded by `takeover data transcode`, which
pauses while another process records an attempt and carries on after a kill."""

from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text

from takeover.app.cli import main
from takeover.app.cli.data_transcode import NICENESS
from takeover.recorder.wal import LOCK_FILE
from takeover.storage import migrations
from takeover.storage.blobs import LocalFile
from takeover.storage.catalog import Catalog
from takeover.storage.errors import StorageError
from takeover.storage.fsck import fsck
from takeover.storage.manifest import Manifest
from takeover.storage.schema import CameraStream, Episode
from takeover.storage.store import Store
from takeover.storage.testing import encode_rgb_jpeg, frames_in_a_log, make_episode, moving_scene
from takeover.storage.transcode import StreamRef, open_video, pending_streams, transcode_stream
from takeover.storage.video import (
    VideoCodecError,
    VideoFrames,
    VideoIndex,
    VideoParams,
    available_codecs,
    decode_jpeg_rgb,
    encode_video,
)
from takeover.storage.video_rows import VideoRecord

H, W, N = 96, 128, 36
CODECS = sorted(available_codecs())
MAX_MEAN_ABS_ERROR = 6.0
"""Per frame, in 8-bit levels, against the JPEG decode (measured: 4.3-4.9 at crf 23 / 35)."""
MIN_PSNR_DB = 28.0
"""Per frame (measured: 30.3-33.5 dB)."""


def test_both_codecs_are_available() -> None:
    # The PyAV wheel bundles libx264 and SVT-AV1 / dav1d; the rest of this file runs on each.
    assert CODECS == ["av1", "h264"]


def _scene_episode(episode_id: str, cameras: tuple[str, ...] = ("front",), seed: int = 0) -> Episode:
    """An episode whose cameras film a moving scene, one frame every other step."""
    ep = make_episode(episode_id, 2 * N, seed=seed, cameras=cameras, frame_every=2, image_size=(H, W))
    for k, name in enumerate(cameras):
        frames = moving_scene(N, H, W, seed=seed * 10 + k)
        ep.cameras[name].frames = [encode_rgb_jpeg(f, quality=90) for f in frames]
    return ep


@pytest.fixture
def scene_store(tmp_path: Path) -> Iterator[Store]:
    with Store.create(tmp_path / "store") as store:
        ep = _scene_episode("ep-0", ("front", "wrist"))
        frames_in_a_log(ep, "front", tmp_path / "cam-front.log")  # one camera in a frame blob
        store.add_episode(ep)
        yield store


def _reference(store: Store, episode_id: str, camera: str) -> tuple[list[np.ndarray], CameraStream]:
    cam = store.read_episode(episode_id).cameras[camera]
    return [decode_jpeg_rgb(j).astype(np.float64) for j in cam.frames], cam


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0**2 / max(1e-9, float(np.mean((a - b) ** 2)))))


@pytest.mark.parametrize("codec", CODECS)
def test_round_trip_keeps_every_frame_in_order_within_tolerance(scene_store: Store, codec: str) -> None:
    for camera in ("front", "wrist"):  # from a frame blob, and from frames inside the episode file
        done = transcode_stream(scene_store, StreamRef("ep-0", camera, N), VideoParams(codec, gop=10))
        assert done.recorded and 0 < done.video_bytes < done.jpeg_bytes
        ref, cam = _reference(scene_store, "ep-0", camera)
        with open_video(scene_store, done.record) as video:
            assert len(video) == len(ref) == N
            np.testing.assert_array_equal(video.frame_index.timestamps, cam.timestamps)
            np.testing.assert_array_equal(video.frame_index.step_index, cam.step_index)
            assert video.frame_index.key.nonzero()[0].tolist() == [0, 10, 20, 30]
            for i, frame in enumerate(video):
                assert frame.shape == (H, W, 3) and frame.dtype == np.uint8
                got = frame.astype(np.float64)
                # Frame i is the recorded frame i: nearer to it than to any other frame.
                errors = [float(np.abs(got - r).mean()) for r in ref]
                assert int(np.argmin(errors)) == i
                assert errors[i] <= MAX_MEAN_ABS_ERROR and _psnr(got, ref[i]) >= MIN_PSNR_DB
    # The JPEG frames are kept; the store knows the video blobs (no orphans), all intact.
    assert len(scene_store.read_episode("ep-0").cameras["front"].frames) == N
    assert scene_store.check().healthy


@pytest.mark.parametrize("codec", CODECS)
def test_random_access_backwards_and_forwards_decodes_the_same_frames(scene_store: Store, codec: str) -> None:
    record = transcode_stream(scene_store, StreamRef("ep-0", "front", N), VideoParams(codec, gop=7)).record
    with open_video(scene_store, record) as video:
        in_order = list(video)
    order = [35, 0, 34, 13, 12, 14, 6, 7, 29, 28, 21, 20, 22, 35, 1, 0]
    order += np.random.default_rng(3).integers(0, N, 30).tolist()
    with open_video(scene_store, record) as video:
        for i in order:
            np.testing.assert_array_equal(video[i], in_order[i])
        assert [f.shape for f in video[-2:]] == [(H, W, 3)] * 2
        with pytest.raises(IndexError):
            video[N]


def test_a_video_on_a_real_s3_endpoint(tmp_path: Path, s3_url: str) -> None:
    with Store.create(tmp_path / "store", blob_url=s3_url) as store:
        ep = _scene_episode("ep-s3", ("front",), seed=2)
        frames_in_a_log(ep, "front", tmp_path / "cam.log")
        store.add_episode(ep)
        (stream,) = pending_streams(store, VideoParams("h264"))
        record = transcode_stream(store, stream, VideoParams("h264")).record
        assert store.blobs.verify(record.digest) and store.blobs.url.startswith("s3://")
        assert not (tmp_path / "store" / "blobs").exists()  # nothing went to the local folder
        ref, _ = _reference(store, "ep-s3", "front")
        index = VideoIndex.from_json(store.catalog.video_index("ep-s3", "front", record.digest))
        video = VideoFrames(store.blobs, record.digest, index)  # ranged GETs, a keyframe interval each
        for i in (30, 3, 17, 16, 35):
            assert float(np.abs(video[i].astype(np.float64) - ref[i]).mean()) <= MAX_MEAN_ABS_ERROR
        store.commit("v1", videos=True)
        assert store.resolve("v1").manifest.episodes[0].videos == (("front", record.digest),)
        assert pending_streams(store, VideoParams("h264")) == []


def test_migration_0004_adds_the_video_table_to_a_catalog_at_0002(tmp_path: Path) -> None:
    db = tmp_path / "catalog.db"
    engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.begin() as conn:
            cfg = migrations._config()
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "0002_episode_blobs")
            conn.execute(
                text(
                    "INSERT INTO episodes VALUES ('ep-old', 's', 'r', 't', 'o', 'p', 10, 1, 2, 5, 1, "
                    "'success', :d, 0, 0, 3)"
                ),
                {"d": "a" * 64},
            )
        assert "episode_videos" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()
    with Catalog(f"sqlite:///{db}") as cat:
        assert [r.episode_id for r in cat.list_episodes()] == ["ep-old"]
        assert cat.videos_of() == {}
        with cat.engine.connect() as conn:
            assert migrations.current(conn) == migrations.head()
            assert "episode_videos" in inspect(conn).get_table_names()


def test_commit_pins_the_newest_video_of_each_camera_and_names_what_is_missing(tmp_path: Path) -> None:
    with Store.create(tmp_path / "store") as store:
        for k in range(2):
            store.add_episode(make_episode(f"ep-{k}", 8, seed=k, cameras=("front", "wrist"), frame_every=1))
        h264 = VideoParams("h264", gop=4)
        for stream in pending_streams(store, h264, ["ep-0"]):
            transcode_stream(store, stream, h264)
        with pytest.raises(StorageError, match=r"2 stream\(s\) not transcoded: ep-1/front, ep-1/wrist"):
            store.commit("v1", videos=True)
        assert store.tags() == []
        for stream in pending_streams(store, h264):
            transcode_stream(store, stream, h264)
        newer = transcode_stream(store, StreamRef("ep-1", "front", 8), VideoParams("av1", gop=4)).record
        _, manifest = store.commit("v1", videos=["front"])
        by_id = {e.episode_id: e for e in manifest.episodes}
        assert by_id["ep-1"].videos == (("front", newer.digest),)
        assert [c for c, _ in by_id["ep-0"].videos] == ["front"]
        _, manifest = store.commit("v2", videos=True)
        assert all([c for c, _ in e.videos] == ["front", "wrist"] for e in manifest.episodes)
        _, plain = store.commit("v3")
        assert all(e.videos == () for e in plain.episodes)
        assert store.check().healthy


def test_transcoding_again_records_nothing_twice(scene_store: Store) -> None:
    params = VideoParams("h264")
    assert [str(s) for s in pending_streams(scene_store, params)] == ["ep-0/front", "ep-0/wrist"]
    first = transcode_stream(scene_store, StreamRef("ep-0", "front", N), params)
    again = transcode_stream(scene_store, StreamRef("ep-0", "front", N), params)
    assert first.recorded and not again.recorded
    assert [str(s) for s in pending_streams(scene_store, params)] == ["ep-0/wrist"]
    assert len(scene_store.catalog.videos_of(["ep-0"])["ep-0"]) == 1


_RECORD_AN_ATTEMPT = """
import sys
from pathlib import Path
from takeover.recorder.testing import start_record
from takeover.recorder.wal import WalWriter
wal = WalWriter(Path(sys.argv[1]))
wal.start(start_record(Path(sys.argv[1]).name))
print("held", flush=True)
sys.stdin.read()  # until the test ends the attempt
wal.close(None, {})
wal.release()
"""


def _hold_attempt_lock(store: Store, episode_id: str) -> subprocess.Popen[bytes]:
    """Another process recording an attempt into the store: the recorder's own write-ahead log
    writer, which holds the log's lock from the attempt's start until it is stored."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _RECORD_AN_ATTEMPT, str(store.wal_dir / episode_id)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"held"
    assert (store.wal_dir / episode_id / LOCK_FILE).is_file()
    return proc


def _release(proc: subprocess.Popen[bytes]) -> None:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.close()
    proc.wait(10)
    proc.stdout.close()


def _transcode_process(root: Path) -> subprocess.Popen[str]:
    cmd = [
        sys.executable,
        "-m",
        "takeover.app.cli",
        "data",
        "transcode",
        "--store",
        str(root),
        "--poll",
        "0.1",
    ]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_line(proc: subprocess.Popen[str], words: str, timeout: float = 20.0) -> str:
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if words in line:
            return line
        if not line and proc.poll() is not None:
            break
    raise AssertionError(f"no line with {words!r} from the transcoder")


def test_transcode_pauses_while_another_process_records_an_attempt(
    scene_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    root = scene_store.root
    holder = _hold_attempt_lock(scene_store, "ep-live")
    try:
        proc = _transcode_process(root)
        assert "ep-live" in _wait_for_line(proc, "paused: attempt")
        time.sleep(0.5)
        assert proc.poll() is None and scene_store.catalog.videos_of() == {}  # nothing while paused
        assert os.getpriority(os.PRIO_PROCESS, proc.pid) >= os.getpriority(os.PRIO_PROCESS, 0) + NICENESS
        # A kill while paused (the encoder holds a half-written video) leaves no row, no blob.
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        proc.communicate()
        assert scene_store.catalog.videos_of() == {}
        report = scene_store.check()
        assert report.orphans == [] and [p.name[:7] for p in report.temp_files] == [".video-"]
        proc = _transcode_process(root)
        _wait_for_line(proc, "paused: attempt")
        # One transcoder per store: a second is refused in one line naming the first.
        assert main(["data", "transcode", "--store", str(root)]) == 2
        assert f"takeover data transcode, pid {proc.pid}" in capsys.readouterr().err
    finally:
        _release(holder)  # the attempt is stored: the lock goes
    _wait_for_line(proc, "resumed")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "transcoded 2 stream(s)" in out and "paused 1 time(s)" in out
    assert {v.camera for v in scene_store.videos_of(["ep-0"])["ep-0"]} == {"front", "wrist"}
    scene_store.remove_stale_temp_files()
    assert scene_store.check().healthy


def test_an_attempt_left_by_a_crash_does_not_pause_transcoding(scene_store: Store) -> None:
    wal = scene_store.wal_dir / "ep-crashed"
    wal.mkdir(parents=True)
    with open(wal / LOCK_FILE, "w") as f:  # a lock file nobody holds any more
        fcntl.flock(f, fcntl.LOCK_EX)
    assert main(["data", "transcode", "--store", str(scene_store.root), "--episodes", "ep-0"]) == 0
    assert len(scene_store.catalog.videos_of()["ep-0"]) == 2


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--codec", "vp9"], "unknown codec 'vp9': this installation can transcode to av1, h264"),
        (["--episodes", "ep-0", "ep-nope"], "no such episodes in the store at"),
        (["--gop", "0"], "a whole number in 1..600"),
        (["--crf", "60"], "crf for h264 is 0..51, got 60"),
        (["--poll", "0"], "seconds in 0.01..60, got '0'"),
        (["--codec", "av1", "--preset", "fast"], "unknown av1 preset 'fast': choose from 13, 12,"),
    ],
)
def test_transcode_errors_are_one_line(
    scene_store: Store, argv: list[str], words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["data", "transcode", "--store", str(scene_store.root), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and words in err and "Traceback" not in err
    assert scene_store.catalog.videos_of() == {}


def test_commit_with_videos_missing_is_one_line(
    scene_store: Store, capsys: pytest.CaptureFixture[str]
) -> None:
    root = str(scene_store.root)
    assert main(["data", "commit", "--store", root, "--tag", "v1", "--videos"]) == 2
    assert "no episode of the selection has a transcoded camera stream" in capsys.readouterr().err
    assert main(["data", "transcode", "--store", root, "--codec", "av1"]) == 0
    capsys.readouterr()
    assert main(["data", "commit", "--store", root, "--tag", "v1", "--videos", "front", "side"]) == 2
    assert "1 stream(s) not transcoded: ep-0/side" in capsys.readouterr().err
    assert main(["data", "commit", "--store", root, "--tag", "v1", "--videos"]) == 0
    assert [c for c, _ in scene_store.resolve("v1").manifest.episodes[0].videos] == ["front", "wrist"]


def test_unknown_and_unavailable_codecs_name_those_there_are() -> None:
    with pytest.raises(VideoCodecError, match="can transcode to av1, h264"):
        VideoParams("mjpeg")


def test_the_catalog_records_videos_once_on_sqlite_and_postgres(catalog: Catalog) -> None:
    ep = make_episode("ep-v", 4)
    catalog.add_episode(ep.meta, "e" * 64, ep.num_steps, ep.events)
    params = VideoParams("h264").to_json()
    record = VideoRecord("ep-v", "front", "h264", params, "d" * 64, 5.0)
    assert catalog.add_video(record, '{"index": 1}') is True
    assert catalog.add_video(replace(record, digest="f" * 64), "{}") is False  # recorded: kept as it was
    later = replace(record, params=VideoParams("av1").to_json(), codec="av1", digest="a" * 64, created_at=6.0)
    assert catalog.add_video(later, "{}") is True
    assert catalog.videos_of(["ep-v", "ep-none"]) == {"ep-v": [record, later]}
    assert catalog.video_index("ep-v", "front", "d" * 64) == '{"index": 1}'
    with pytest.raises(StorageError, match="not in the catalog"):
        catalog.add_video(replace(record, episode_id="ep-none"), "{}")
    with pytest.raises(StorageError, match="no video"):
        catalog.video_index("ep-v", "wrist", "d" * 64)


@pytest.mark.parametrize("codec", CODECS)
def test_an_odd_frame_size_is_padded_to_encode_and_cropped_to_read(tmp_path: Path, codec: str) -> None:
    frames = moving_scene(5, 95, 127)
    jpegs = [encode_rgb_jpeg(f, quality=90) for f in frames]
    out = tmp_path / "odd.mp4"
    index = encode_video(jpegs, np.arange(5) / 30, np.arange(5), (95, 127), VideoParams(codec), out)
    video = VideoFrames(LocalFile(out), "unused", index)
    for i in (4, 0, 2):
        got = video[i]
        assert got.shape == (95, 127, 3)
        assert float(np.abs(got.astype(np.float64) - decode_jpeg_rgb(jpegs[i])).mean()) <= MAX_MEAN_ABS_ERROR


def test_a_camera_without_frames_is_not_transcoded_and_a_bad_stream_does_not_stop_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Store.create(tmp_path / "store") as store:
        empty = make_episode("ep-empty", 4, cameras=("front",), first_frame_step=10)
        assert len(empty.cameras["front"].frames) == 0
        store.add_episode(empty)
        bad = make_episode("ep-bad", 6, cameras=("front",), frame_every=1)
        bad.cameras["front"].frames = [b"not a jpeg"] * 6
        store.add_episode(bad)
        store.add_episode(make_episode("ep-good", 6, cameras=("front",), frame_every=1))
        assert [str(s) for s in pending_streams(store, VideoParams())] == ["ep-bad/front", "ep-good/front"]
        assert main(["data", "transcode", "--store", str(store.root)]) == 1
        out, err = capsys.readouterr()
        assert "transcoded 1 stream(s)" in out
        assert err.splitlines()[-1] == "error: 1 stream(s) could not be transcoded: ep-bad/front"
        assert "ep-bad/front: not transcoded: a camera frame is not a decodable JPEG" in err
        assert list(store.videos_of()) == ["ep-good"]
        store.remove_stale_temp_files()
        assert store.check().healthy


def test_fsck_checks_the_videos_a_version_pins(tmp_path: Path) -> None:
    with Store.create(tmp_path / "store") as store:
        store.add_episode(make_episode("ep-0", 6, cameras=("front",), frame_every=1))
        (stream,) = pending_streams(store, VideoParams())
        record = transcode_stream(store, stream, VideoParams()).record
        _, manifest = store.commit("v1", videos=True)
        assert fsck(store).clean
        entry = replace(manifest.episodes[0], videos=(("front", "b" * 64),))
        store.catalog.commit_version(Manifest.build([entry], {"selection": "by hand"}), "v2")
        store.blobs.remove(record.digest)
        lines = [p.line() for p in fsck(store).problems]
    assert any(f"video of front {record.digest[:12]} missing" in line for line in lines)
    unknown = "pins a video of front (bbbbbbbbbbbb) the catalog does not record"
    assert sum(unknown in line for line in lines) == 1
    assert sum("its data is damaged" in line for line in lines) == 2  # both versions hold the episode


@pytest.mark.parametrize("stream", [False, True], ids=["copied", "streamed"])
def test_pull_reads_the_frames_of_a_pinned_video_and_fetches_no_jpeg_blob(
    scene_store: Store, tmp_path: Path, stream: bool
) -> None:
    from torch.utils.data import DataLoader

    from takeover.storage import pull

    record = transcode_stream(scene_store, StreamRef("ep-0", "front", N), VideoParams("h264", gop=10)).record
    scene_store.commit("jpeg")
    scene_store.commit("video", videos=["front"])
    jpeg_blob = scene_store.catalog.frame_blobs(["ep-0"])["ep-0"][0]
    keys = ["images.front", "step_index"]
    plain = pull("jpeg", scene_store, cache_dir=tmp_path / "c1", keys=keys)
    ds = pull("video", scene_store, cache_dir=tmp_path / "c2", keys=keys, stream=stream)
    assert len(ds) == len(plain) == 2 * N and ds.version != plain.version
    if not stream:  # the copy holds the video, not the JPEG frames it stands for
        assert (tmp_path / "c2" / "blobs" / "sha256" / record.digest[:2] / record.digest).is_file()
        assert not (tmp_path / "c2" / "blobs" / "sha256" / jpeg_blob[:2] / jpeg_blob).exists()
    for i in (0, 1, 37, 36, 71, 2, 50):  # random access, backwards too
        got, want = ds[i], plain[i]
        assert got["images.front.valid"].item() == want["images.front.valid"].item()
        a, b = got["images.front"].double(), want["images.front"].double()
        assert a.shape == b.shape == (3, H, W)
        assert float((a - b).abs().mean()) <= MAX_MEAN_ABS_ERROR
    # Two DataLoader workers each decode with their own decoder.
    batches = list(DataLoader(ds, batch_size=24, num_workers=2))
    images = np.concatenate([b["images.front"].numpy() for b in batches])
    expected = np.stack([plain[i]["images.front"].numpy() for i in range(len(plain))]).astype(np.float64)
    assert float(np.abs(images.astype(np.float64) - expected).mean()) <= MAX_MEAN_ABS_ERROR
    ds.close()
    plain.close()
