"""`takeover data pull`: an interrupted pull continues where it stopped, by byte range, and a
damaged partial download is found, removed and reported in one line (through the real CLI)."""

from __future__ import annotations

from pathlib import Path

import pytest

from takeover.app.cli import main
from takeover.storage import cache as cache_module
from takeover.storage.blobs import LocalBlobStore
from takeover.storage.store import Store
from takeover.storage.testing import frames_in_a_log, make_episode

RANGE = 1024


@pytest.fixture
def root(tmp_path: Path) -> Path:
    with Store.create(tmp_path / "store") as store:
        ep = make_episode("ep-a", 30, seed=1, cameras=("front",), image_size=(24, 32))
        frames_in_a_log(ep, "front", tmp_path / "front.log")
        store.add_episode(ep)
        store.commit("v1")
    return tmp_path / "store"


class Ranges:
    """Every range read from the store, as (digest, start); a Ctrl-C at the ``interrupt_at``-th."""

    def __init__(self) -> None:
        self.asked: list[tuple[str, int]] = []
        self.interrupt_at: int | None = 3

    def starts(self, digest: str) -> list[int]:
        return [start for d, start in self.asked if d == digest]


@pytest.fixture
def ranges(root: Path, monkeypatch: pytest.MonkeyPatch) -> Ranges:
    monkeypatch.setattr(cache_module, "RANGE_BYTES", RANGE)
    seen = Ranges()
    real = LocalBlobStore.read_range

    def recording(self: LocalBlobStore, digest: str, start: int, length: int) -> bytes:
        if self.root == root:
            seen.asked.append((digest, start))
            if len(seen.asked) == seen.interrupt_at:
                raise KeyboardInterrupt  # Ctrl-C in the middle of a pull
        return real(self, digest, start, length)

    monkeypatch.setattr(LocalBlobStore, "read_range", recording)
    return seen


def _pull(root: Path, cache: Path) -> int:
    return main(["data", "pull", "v1", "--store", str(root), "--cache", str(cache)])


def test_an_interrupted_pull_resumes_by_byte_range(
    root: Path, tmp_path: Path, ranges: Ranges, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    assert _pull(root, cache) == 130  # interrupted at the third range
    digest = ranges.asked[0][0]
    partial = cache / "partial" / digest
    assert partial.stat().st_size == 2 * RANGE and not LocalBlobStore(cache).has(digest)
    ranges.asked.clear()
    ranges.interrupt_at = None
    assert _pull(root, cache) == 0
    out = capsys.readouterr().out
    assert "pulled v1 -> version" in out and "fetched 2 blobs" in out
    assert ranges.starts(digest)[0] == 2 * RANGE  # continued, not restarted
    assert LocalBlobStore(cache).verify(digest) and not partial.exists()


def test_a_damaged_partial_download_is_removed_and_reported_in_one_line(
    root: Path, tmp_path: Path, ranges: Ranges, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    assert _pull(root, cache) == 130
    digest = ranges.asked[0][0]
    partial = cache / "partial" / digest
    data = bytearray(partial.read_bytes())
    data[100] ^= 0xFF  # a bit flipped in what the interrupted pull kept
    partial.write_bytes(bytes(data))
    ranges.interrupt_at = None
    capsys.readouterr()
    assert _pull(root, cache) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    for words in (
        digest[:12],
        "interrupted pull",
        "damaged",
        "does not match its hash",
        "run the pull again",
    ):
        assert words in err, (words, err)
    assert not partial.exists() and not LocalBlobStore(cache).has(digest)
    assert _pull(root, cache) == 0  # the pull again fetches that blob whole
    assert LocalBlobStore(cache).verify(digest)


def test_pull_options_on_the_command_line(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = tmp_path / "cache"
    argv = ["data", "pull", "v1", "--store", str(root), "--cache", str(cache)]
    assert main([*argv, "--keys", "state,action"]) == 0
    out = capsys.readouterr().out
    assert "keys: state, action" in out and "fetched 1 blobs" in out  # the episode file, no frames
    assert main([*argv, "--keys", "state,images.front", "--image-size", "12x16"]) == 0
    out = capsys.readouterr().out
    assert "fetched 1 blobs" in out and "training cache 12x16: front" in out
    assert main([*argv, "--image-size", "224"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--image-size" in err and "HEIGHTxWIDTH" in err
    assert main([*argv, "--keys", "state,images.top"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no key images.top in this version" in err
