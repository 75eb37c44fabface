"""Hypothesis state machine: any sequence of add / commit / commit a child of a parent with changes /
tag / reopen keeps tags immutable, version digests a pure function of the whole manifest, and
versions stored as deltas read back as they were made."""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from takeover.storage.errors import (
    EmptySelectionError,
    TagExistsError,
    UnknownTagError,
    VersionChangeError,
)
from takeover.storage.manifest import Manifest, ManifestEntry
from takeover.storage.store import Store
from takeover.storage.testing import make_episode

TAGS = st.sampled_from(["v1", "v2", "v3", "nightly", "rc-1", "release/2"])


class VersioningMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self._tmp = tempfile.TemporaryDirectory()
        self.root = Path(self._tmp.name) / "store"
        self.store = Store.create(self.root)
        self.episodes: dict[str, str] = {}  # episode id -> blob digest
        self.tags: dict[str, tuple[str, Manifest]] = {}
        self.versions: dict[tuple[str, frozenset[str]], str] = {}  # (selection, ids) -> digest

    def teardown(self) -> None:
        self.store.close()
        self._tmp.cleanup()

    @rule(steps=st.integers(0, 6), success=st.sampled_from([True, False, None]))
    def add_episode(self, steps: int, success: bool | None) -> None:
        eid = f"ep-{len(self.episodes):03d}"
        ep = make_episode(eid, steps, seed=len(self.episodes), cameras=(), success=success, outcome="")
        self.episodes[eid] = self.store.add_episode(ep)

    @precondition(lambda self: bool(self.episodes))
    @rule(data=st.data())
    def re_add_is_idempotent(self, data: st.DataObject) -> None:
        eid = data.draw(st.sampled_from(sorted(self.episodes)))
        assert self.store.add_episode(self.store.read_episode(eid)) == self.episodes[eid]
        assert self.store.get_episode(eid).blob_digest == self.episodes[eid]

    @rule(tag=TAGS, picks=st.none() | st.lists(st.integers(0, 1000), max_size=4))
    def commit(self, tag: str, picks: list[int] | None) -> None:
        ids = sorted(self.episodes)
        selection = None if picks is None else sorted({ids[p % len(ids)] for p in picks} if ids else set())
        if tag in self.tags:
            with pytest.raises(TagExistsError):
                self.store.commit(tag, selection)
            return
        if not ids or selection == []:
            with pytest.raises(EmptySelectionError):
                self.store.commit(tag, selection)
            return
        digest, manifest = self.store.commit(tag, selection)
        assert digest == hashlib.sha256(manifest.canonical_json().encode()).hexdigest()
        chosen = frozenset(ids if selection is None else selection)
        assert {e.episode_id for e in manifest.episodes} == chosen
        assert all(e.digest == self.episodes[e.episode_id] for e in manifest.episodes)
        key = ("all" if selection is None else "episode_ids", chosen)
        # equal manifests, equal digests; different manifests, different digests
        assert self.versions.setdefault(key, digest) == digest
        assert sum(d == digest for d in self.versions.values()) == 1
        self.tags[tag] = (digest, manifest)

    @precondition(lambda self: bool(self.tags))
    @rule(tag=TAGS, data=st.data())
    def commit_a_child(self, tag: str, data: st.DataObject) -> None:
        """A parent plus changes: stored as a delta (or whole), read back the same (invariant)."""
        parent_tag = data.draw(st.sampled_from(sorted(self.tags)))
        parent_digest, parent = self.tags[parent_tag]
        held = {e.episode_id: e for e in parent.episodes}
        add = data.draw(st.lists(st.sampled_from(sorted(self.episodes)), max_size=3, unique=True))
        add = [i for i in add if i not in held]
        remove = data.draw(st.lists(st.sampled_from(sorted(held)), max_size=2, unique=True))
        kept = {i: e for i, e in held.items() if i not in remove}
        for i in add:
            r = self.store.get_episode(i)
            kept[i] = ManifestEntry(i, r.blob_digest, r.num_steps, r.success, r.outcome)
        trim = {}
        for i in data.draw(st.lists(st.sampled_from(sorted(kept) or ["-"]), max_size=2, unique=True)):
            n = kept[i].num_steps if i in kept else 0
            if n:
                start = data.draw(st.integers(0, n - 1))
                trim[i] = (start, data.draw(st.integers(start + 1, n)))
                kept[i] = replace(kept[i], steps=None if trim[i] == (0, n) else trim[i])
        if not (add or remove or trim):
            return  # no change: that is `commit` with a parent for its lineage (the rule above)
        if tag in self.tags or not kept:
            with pytest.raises((TagExistsError, UnknownTagError, EmptySelectionError, VersionChangeError)):
                self.store.commit(tag, parent=parent_tag, add=add, remove=remove, trim=trim)
            return
        digest, child = self.store.commit(tag, parent=parent_tag, add=add, remove=remove, trim=trim)
        expected = Manifest.build(list(kept.values()), child.created_from, parent=parent_digest)
        assert child == expected and digest == expected.digest()
        self.tags[tag] = (digest, child)

    @rule()
    def reopen(self) -> None:
        self.store.close()
        self.store = Store.open(self.root)

    @invariant()
    def tags_never_move(self) -> None:
        assert {t.name for t in self.store.tags()} == set(self.tags)
        for tag, (digest, manifest) in self.tags.items():
            version = self.store.resolve(tag)
            assert version.digest == digest and version.manifest == manifest

    @invariant()
    def unknown_tags_stay_unknown(self) -> None:
        with pytest.raises(UnknownTagError):
            self.store.resolve("never-created")


VersioningMachine.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestVersioning = VersioningMachine.TestCase
