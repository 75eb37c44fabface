"""One definition of an episode's metadata: the start message, the stored metadata and the
catalog's record and table all derive from :class:`AttemptInfo`; files from before ``seed`` was
a field still read."""

from __future__ import annotations

import dataclasses

import pytest
from sqlalchemy import inspect

from takeover.recorder.records import EpisodeStart
from takeover.storage.catalog import EpisodeRecord
from takeover.storage.schema import AttemptInfo, AttemptSummary, EpisodeMeta
from takeover.storage.tables import EpisodeRow
from takeover.storage.testing import make_episode


def test_every_record_extends_the_one_definition() -> None:
    info = set(AttemptInfo.field_names())
    for cls in (EpisodeStart, EpisodeMeta, EpisodeRecord):
        assert info <= set(cls.field_names()), cls
    assert set(AttemptSummary.field_names()) <= set(EpisodeRecord.field_names())


def test_the_episodes_table_has_exactly_the_records_columns() -> None:
    columns = {c.key for c in inspect(EpisodeRow).columns}
    # cut_at, seed, end_reason and note live in tables of their own (recoveries, episode_seeds,
    # episode_ends)
    assert columns == set(EpisodeRecord.field_names()) - {"cut_at", "seed", "end_reason", "note"}


def test_stored_metadata_reads_back_and_old_files_keep_their_seed() -> None:
    meta = make_episode("ep-1", seed=11).meta
    stored = dataclasses.asdict(meta)
    assert EpisodeMeta.from_stored(stored) == meta
    old = {k: v for k, v in stored.items() if k != "seed"}
    old["extra"] = {**old["extra"], "seed": 11}
    assert EpisodeMeta.from_stored(old).seed == 11
    with pytest.raises(ValueError, match="unknown field"):
        EpisodeMeta.from_stored({**stored, "colour": "red"})
