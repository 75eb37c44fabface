"""Curation against a real store (SQLite, and PostgreSQL with local and S3 blobs): the facts
read from the catalog, the human steps against the episode files' control source, selections,
statistics, and freezing a query's episodes as a version seen from another connection."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from takeover.annotation.curation import freeze, gather, select_episodes
from takeover.annotation.derivations import smooth_and_store
from takeover.annotation.labels import Rule, relabel, relabel_many
from takeover.annotation.smoothing import SmoothingParams
from takeover.storage.errors import EmptySelectionError, TagExistsError
from takeover.storage.label_revisions import Label
from takeover.storage.schema import ControlSource, Episode
from takeover.storage.store import Store
from takeover.storage.testing import make_episode

from .helpers import HOLD, RAMP, H, P, build_episode

T0 = 1.7e9


def _attempt(ep: Episode, operator: str, outcome: str, minutes: int, success: bool | None = None) -> Episode:
    meta = replace(
        ep.meta,
        operator=operator,
        outcome=outcome,
        success=success,
        started_at=T0 + 60 * minutes,
        ended_at=T0 + 60 * minutes + ep.num_steps / ep.meta.rate_hz,
    )
    return replace(ep, meta=meta)


def fill(store: Store) -> None:
    """Five attempts: a takeover handed back through a ramp, a hold from human hands and a second
    takeover, a clean policy run, a takeover to the end, and one nobody gave a verdict."""
    store.add_episode(
        _attempt(build_episode([P] * 5 + [H] * 4 + [RAMP] * 2 + [P] * 3, episode_id="a"), "ada", "success", 0)
    )
    store.add_episode(
        _attempt(
            build_episode([P] * 3 + [H] * 2 + [HOLD] * 3 + [H] * 2 + [P] * 2, episode_id="b"),
            "bo",
            "failure",
            1,
        )
    )
    store.add_episode(_attempt(build_episode([P] * 10, episode_id="c"), "ada", "success", 2))
    store.add_episode(_attempt(make_episode("d", 12, takeover_at=4, cameras=()), "ada", "near_success", 3))
    store.add_episode(_attempt(build_episode([P] * 6, episode_id="e"), "bo", "", 4))


def test_facts_come_from_the_catalog_and_human_steps_equal_the_files(any_store: Store) -> None:
    fill(any_store)
    relabel(any_store, "b", Label(outcome="near_success", progress=80), annotator="cy")
    smooth_and_store(any_store, "a", SmoothingParams())
    facts = {f.id: f for f in gather(any_store)}
    assert sorted(facts) == ["a", "b", "c", "d", "e"]
    for episode_id, f in facts.items():
        source = np.asarray(any_store.read_episode(episode_id).control_source)
        assert f.human_steps == int(np.count_nonzero(source == int(ControlSource.HUMAN))), episode_id
    assert [facts[i].human_steps for i in "abcde"] == [4, 4, 0, 8, 0]
    assert [facts[i].interventions for i in "abcde"] == [1, 2, 0, 1, 0]
    assert facts["b"].label == "near_success" and facts["b"].source == "annotator"
    assert facts["b"].verdict == "failure" and facts["b"].progress == 80
    assert facts["b"].annotator == {"bo", "cy"}
    assert facts["e"].label is None and facts["e"].source is None
    assert facts["a"].derived == {"boundary_smoothing"} and facts["c"].derived == frozenset()


def test_a_query_selects_and_adds_up(any_store: Store) -> None:
    fill(any_store)
    relabel_many(any_store, ["c", "d"], Label(outcome="failure", failure_category="stuck"), annotator="cy")
    chosen = select_episodes(any_store, "has_intervention and operator == ada")
    assert chosen.ids == ["a", "d"]
    s = chosen.stats
    assert (s.episodes, s.steps, s.interventions, s.human_steps) == (2, 26, 2, 12)
    assert s.outcomes == {"failure": 1, "near_success": 0, "success": 1, "none": 0}
    assert select_episodes(any_store, "label == failure and category == stuck").ids == ["c", "d"]
    assert select_episodes(any_store, "label == none").ids == ["e"]
    assert select_episodes(any_store, "verdict == success and label == failure").ids == ["c"]
    assert select_episodes(any_store, "human_fraction >= 50%").ids == ["d"]


def test_resolution_rule_changes_what_label_means(any_store: Store) -> None:
    fill(any_store)
    relabel(any_store, "a", Label(outcome="failure"), annotator="bo")
    relabel(any_store, "a", Label(outcome="failure"), annotator="cy")
    relabel(any_store, "a", Label(outcome="success"), annotator="lee", role="lead")
    assert "a" in select_episodes(any_store, "label == success", Rule.LEAD).ids
    assert "a" in select_episodes(any_store, "label == failure", Rule.MAJORITY).ids


def test_freezing_a_query_records_it_and_pins_the_labels(any_store: Store) -> None:
    fill(any_store)
    relabel(any_store, "d", Label(outcome="success", quality="clean"), annotator="cy")
    digest, manifest, chosen = freeze(
        any_store, "takeovers-v1", "interventions >= 1", message="every attempt with a takeover"
    )
    assert chosen.ids == ["a", "b", "d"]
    with Store.open(any_store.root, any_store.catalog_url, catalog_schema=any_store.catalog_schema) as other:
        version = other.resolve("takeovers-v1")
    assert version.digest == digest
    assert version.message == "every attempt with a takeover"
    assert version.manifest.created_from == {"selection": "query", "query": "interventions >= 1"}
    entries = {e.episode_id: e for e in version.manifest.episodes}
    assert sorted(entries) == ["a", "b", "d"]
    assert entries["d"].outcome == "success" and entries["d"].labels.startswith("lead:")
    assert entries["a"].labels == "" and entries["a"].outcome == "success"  # the verdict: no pin
    assert manifest == version.manifest

    with pytest.raises(TagExistsError, match="takeovers-v1"):
        freeze(any_store, "takeovers-v1", "label == success")
    with pytest.raises(EmptySelectionError, match="the query matches no episodes"):
        freeze(any_store, "none-v1", "steps > 1000")
    _, child, _ = freeze(any_store, "ada-v1", "operator == ada", parent="takeovers-v1")
    assert child.parent == digest
    assert [t.name for t in any_store.tags()] == ["takeovers-v1", "ada-v1"]
