"""Labels: vocabulary and validation, relabelling against a real store (parents, one transaction),
agreement, the disagreement queue and the resolution rules, with Hypothesis properties."""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from takeover.annotation.labels import (
    CAUTION,
    DEFAULT_FAILURE_CATEGORIES,
    Rule,
    Vocabulary,
    agreement,
    disagreement_queue,
    disagrees,
    parse_outcome,
    relabel,
    relabel_many,
    resolve,
    resolve_many,
    version_labels,
    voters,
)
from takeover.storage.errors import InvalidLabelError, UnknownEpisodeError
from takeover.storage.label_revisions import OUTCOMES, Label, LabelRevision
from takeover.storage.store import Store
from takeover.storage.testing import make_episode


def _catalog(store: Store, *episode_ids: str, success: bool = True) -> None:
    """Catalog episodes whose operator (ada) said success (or failure) without storing their files."""
    meta = make_episode("template", 2, cameras=(), success=success, outcome="").meta
    for i, episode_id in enumerate(episode_ids):
        meta_i = replace(meta, episode_id=episode_id, started_at=meta.started_at + i)
        store.catalog.add_episode(meta_i, "d" * 64, 2, [])


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.create(tmp_path / "store") as s:
        yield s


# -- vocabulary ---------------------------------------------------------------------------------
def test_outcomes_are_read_as_people_type_them() -> None:
    assert [parse_outcome(t) for t in ("near-success", "near_success", "Near-Success", " failure ")] == [
        "near_success",
        "near_success",
        "near_success",
        "failure",
    ]
    with pytest.raises(
        InvalidLabelError, match="an outcome is success, near-success or failure, got 'nearly'"
    ):
        parse_outcome("nearly")


def test_the_failure_categories_are_a_configurable_vocabulary() -> None:
    default = Vocabulary()
    assert default.failure_categories == DEFAULT_FAILURE_CATEGORIES
    default.check(Label(outcome="failure", failure_category="collision"))
    with pytest.raises(
        InvalidLabelError, match="unknown failure category 'spilled'; the categories are missed_grasp"
    ):
        default.check(Label(outcome="failure", failure_category="spilled"))
    ours = Vocabulary(("spilled", "late"))
    ours.check(Label(outcome="failure", failure_category="spilled"))
    with pytest.raises(InvalidLabelError, match="the categories are spilled, late"):
        ours.check(Label(outcome="failure", failure_category="collision"))
    with pytest.raises(InvalidLabelError, match="a quality is for successes only"):
        ours.check(Label(outcome="near_success", quality="clean"))
    for bad, message in (((), "at least one"), (("a", "a"), "distinct"), (("two words",), "is a word")):
        with pytest.raises(InvalidLabelError, match=message):
            Vocabulary(bad)


# -- relabelling against a store ----------------------------------------------------------------
def test_a_relabelling_edits_the_annotators_own_head_else_the_episodes_newest(store: Store) -> None:
    _catalog(store, "ep-a")
    (verdict,) = store.labels.history("ep-a")
    bo1 = relabel(store, "ep-a", Label(outcome="near_success", progress=90), annotator="bo")
    cy1 = relabel(store, "ep-a", Label(outcome="failure", failure_category="collision"), annotator="cy")
    bo2 = relabel(store, "ep-a", Label(outcome="success", quality="suboptimal"), annotator="bo")
    lead = relabel(store, "ep-a", Label(outcome="failure"), annotator="di", role="lead")
    assert [r.parent_id for r in (bo1, cy1, bo2, lead)] == [verdict.id, bo1.id, bo1.id, bo2.id]
    assert [(r.annotator, r.role) for r in store.labels.heads(["ep-a"])["ep-a"]] == [
        ("ada", "operator"),
        ("cy", "annotator"),
        ("bo", "annotator"),
        ("di", "lead"),
    ]
    assert store.labels.history("ep-a") == [verdict, bo1, cy1, bo2, lead]


def test_relabelling_a_batch_is_one_transaction(store: Store) -> None:
    _catalog(store, "ep-a", "ep-b", "ep-c")
    before = store.labels.heads()
    with pytest.raises(UnknownEpisodeError, match="ghost"):
        relabel_many(store, ["ep-a", "ghost", "ep-b"], Label(outcome="failure"), annotator="bo")
    with pytest.raises(InvalidLabelError, match="unknown failure category"):
        relabel_many(store, ["ep-a"], Label(outcome="failure", failure_category="nope"), annotator="bo")
    with pytest.raises(InvalidLabelError, match="made as annotator or lead, not 'operator'"):
        relabel_many(store, ["ep-a"], Label(outcome="failure"), annotator="bo", role="operator")
    assert store.labels.heads() == before
    made = relabel_many(store, ["ep-c", "ep-a", "ep-c"], Label(outcome="failure"), annotator="bo")
    assert [r.episode_id for r in made] == ["ep-c", "ep-a"]
    assert {eid: [h.outcome for h in hs] for eid, hs in store.labels.heads().items()} == {
        "ep-a": ["success", "failure"],
        "ep-b": ["success"],
        "ep-c": ["success", "failure"],
    }


def test_the_disagreement_queue_and_the_resolved_labels_of_a_store(store: Store) -> None:
    _catalog(store, "agreed", "split", "settled", "reopened", "three")
    relabel(store, "agreed", Label(outcome="success"), annotator="bo")
    relabel(store, "split", Label(outcome="failure"), annotator="bo")
    relabel(store, "split", Label(outcome="success"), annotator="cy")
    relabel(store, "settled", Label(outcome="failure"), annotator="bo")
    relabel(store, "settled", Label(outcome="success"), annotator="di", role="lead")
    relabel(store, "reopened", Label(outcome="failure"), annotator="bo")
    relabel(store, "reopened", Label(outcome="success"), annotator="di", role="lead")
    relabel(store, "reopened", Label(outcome="near_success"), annotator="cy")  # after the lead's word
    relabel(store, "three", Label(outcome="failure"), annotator="bo")
    relabel(store, "three", Label(outcome="near_success"), annotator="cy")
    # The operator's verdict (success, every episode here) no longer votes once someone reviewed.
    assert disagreement_queue(store) == ["reopened", "split", "three"]  # lowest agreement first
    assert disagreement_queue(store, ["agreed", "split"]) == ["split"]
    lead = resolve_many(store)
    majority = resolve_many(store, rule=Rule.MAJORITY)
    assert {k: (r.outcome, r.source) for k, r in lead.items()} == {
        "agreed": ("success", "annotator"),  # one reviewer: the verdict does not vote
        "split": ("failure", "majority"),  # one against one: the more cautious
        "settled": ("success", "lead"),
        "reopened": ("success", "lead"),  # the lead's word still counts under `lead`
        "three": ("failure", "majority"),  # one each: failure is the most cautious
    }
    assert {k: r.outcome for k, r in majority.items()} == {
        "agreed": "success",
        "split": "failure",
        "settled": "failure",  # the lead's success against one failure, without the lead rule: a tie
        "reopened": "failure",  # one each
        "three": "failure",
    }
    assert lead["split"].tie and not lead["agreed"].tie and lead["three"].agreement == pytest.approx(1 / 2)
    assert lead["reopened"].agreement == pytest.approx(1 / 3)


def test_one_annotator_corrects_the_operators_verdict_either_way(store: Store) -> None:
    _catalog(store, "ep-a", "ep-b")
    relabel(store, "ep-a", Label(outcome="failure"), annotator="bo")
    relabel(store, "ep-b", Label(outcome="failure"), annotator="bo")
    relabel(store, "ep-b", Label(outcome="success", quality="clean"), annotator="bo")
    for rule in Rule:
        got = {k: (r.outcome, r.source, r.agreement) for k, r in resolve_many(store, rule=rule).items()}
        assert got == {"ep-a": ("failure", "annotator", 1.0), "ep-b": ("success", "annotator", 1.0)}
    assert disagreement_queue(store) == []


def test_resolution_of_one_revision_says_whose_it_is(store: Store) -> None:
    _catalog(store, "ep-a")
    (only,) = store.labels.history("ep-a")
    res = resolve([only])
    assert res is not None and (res.outcome, res.source, res.revisions, res.agreement) == (
        "success",
        "operator",
        (only.id,),
        1.0,
    )
    assert resolve([]) is None and agreement([]) == 1.0 and not disagrees([])


# -- properties ---------------------------------------------------------------------------------
def _revision(i: int, annotator: str, role: str, outcome: str) -> LabelRevision:
    return LabelRevision(
        id=i, episode_id="ep", parent_id=None, annotator=annotator, role=role, created_at=0.0, outcome=outcome
    )


@st.composite
def heads_st(draw: st.DrawFn, min_size: int = 1, max_size: int = 8) -> list[LabelRevision]:
    """The heads of one episode: one newest revision per annotator, with distinct ids, any order."""
    votes = draw(
        st.lists(
            st.tuples(st.sampled_from(("operator", "annotator", "lead")), st.sampled_from(OUTCOMES)),
            min_size=min_size,
            max_size=max_size,
        )
    )
    ids = draw(st.lists(st.integers(1, 10_000), min_size=len(votes), max_size=len(votes), unique=True))
    return [_revision(i, f"a{k}", role, o) for k, (i, (role, o)) in enumerate(zip(ids, votes, strict=True))]


@given(heads_st())
def test_agreement_is_the_share_of_the_most_common_outcome(heads: list[LabelRevision]) -> None:
    share, voting = agreement(heads), voters(heads)
    assert 1 / len(voting) <= share <= 1.0
    assert (share == 1.0) == (len({h.outcome for h in voting}) == 1)
    assert agreement(heads[:1]) == 1.0
    assert voting == ([h for h in heads if h.role != "operator"] or heads)


@given(heads_st(), st.data())
def test_adding_an_agreeing_annotator_never_lowers_agreement(
    heads: list[LabelRevision], data: st.DataObject
) -> None:
    counts = Counter(h.outcome for h in voters(heads))
    most_common = [o for o, n in counts.items() if n == max(counts.values())]
    outcome = data.draw(st.sampled_from(most_common))
    role = data.draw(st.sampled_from(("annotator", "lead")))
    more = [*heads, _revision(max(h.id for h in heads) + 1, "newcomer", role, outcome)]
    assert agreement(more) >= agreement(heads)


@given(heads_st(min_size=0), st.sampled_from(OUTCOMES))
def test_a_new_lead_revision_always_wins_under_lead_and_settles_the_disagreement(
    heads: list[LabelRevision], outcome: str
) -> None:
    newest = max((h.id for h in heads), default=0) + 1
    lead = _revision(newest, "the-lead", "lead", outcome)
    res = resolve([*heads, lead], Rule.LEAD)
    assert res is not None and res.outcome == outcome and res.revisions == (lead.id,) and res.source == "lead"
    assert not disagrees([*heads, lead])


@given(heads_st(), st.randoms(use_true_random=False))
def test_majority_takes_the_most_common_outcome_and_breaks_ties_towards_caution(
    heads: list[LabelRevision], rnd: object
) -> None:
    res = resolve(heads, Rule.MAJORITY)
    assert res is not None
    voting = voters(heads)
    counts = Counter(h.outcome for h in voting)
    tied = [o for o in OUTCOMES if counts[o] == max(counts.values())]
    assert res.outcome in tied and CAUTION.index(res.outcome) == min(CAUTION.index(o) for o in tied)
    assert res.tie == (len(tied) > 1)
    # It rests on every head that says so, the newest of them gives the label, and neither the
    # order of the heads nor who holds which role changes it.
    assert res.revisions == tuple(sorted(h.id for h in voting if h.outcome == res.outcome))
    assert res.label.id == res.revisions[-1]
    shuffled = list(heads)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert resolve(shuffled, Rule.MAJORITY) == res
    plain = [replace(h, role="annotator") if h.role == "lead" else h for h in heads]
    again = resolve(plain, Rule.MAJORITY)
    assert again is not None and (again.outcome, again.revisions) == (res.outcome, res.revisions)


@given(heads_st())
def test_without_a_lead_the_lead_rule_is_the_majority(heads: list[LabelRevision]) -> None:
    plain = [replace(h, role="annotator") for h in heads]
    lead, majority = resolve(plain, Rule.LEAD), resolve(plain, Rule.MAJORITY)
    assert lead is not None and majority is not None
    assert (lead.outcome, lead.revisions, lead.source) == (
        majority.outcome,
        majority.revisions,
        majority.source,
    )
    assert disagrees(plain) == (len({h.outcome for h in plain}) > 1)


_STORE_ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(("ep-a", "ep-b")),
        st.sampled_from(("bo", "cy", "di")),
        st.booleans(),
        st.sampled_from(OUTCOMES),
    ),
    max_size=8,
)


@settings(max_examples=15, deadline=None)
@given(_STORE_ACTIONS)
def test_the_stores_heads_and_resolutions_follow_the_history(
    actions: list[tuple[str, str, bool, str]],
) -> None:
    """Whatever relabellings are made, each edits its annotator's previous revision (else the
    episode's newest), each annotator's head in the store is the last one they made, and resolving
    the store's heads equals resolving those."""
    with tempfile.TemporaryDirectory() as folder, Store.create(Path(folder) / "store") as store:
        _catalog(store, "ep-a", "ep-b")
        for episode_id, annotator, as_lead, outcome in actions:
            role = "lead" if as_lead else "annotator"
            relabel(store, episode_id, Label(outcome=outcome), annotator=annotator, role=role)
        for episode_id in ("ep-a", "ep-b"):
            history = store.labels.history(episode_id)
            last = {r.annotator: r for r in history}  # the newest of each annotator wins
            heads = sorted(last.values(), key=lambda r: r.id)
            assert store.labels.heads([episode_id])[episode_id] == heads
            for k, r in enumerate(history[1:], 1):  # each edits its annotator's previous, else the newest
                own = [q.id for q in history[:k] if q.annotator == r.annotator]
                assert r.parent_id == (own[-1] if own else history[k - 1].id)
            for rule in Rule:
                assert resolve_many(store, [episode_id], rule)[episode_id] == resolve(heads, rule)
            in_queue = episode_id in disagreement_queue(store)
            assert in_queue == disagrees(heads)


def test_a_version_pins_the_resolved_labels_and_only_those(tmp_path: Path) -> None:
    with Store.create(tmp_path / "store") as store:
        for i, episode_id in enumerate(("ep-a", "ep-b", "ep-c")):
            store.add_episode(make_episode(episode_id, 4, seed=i, cameras=()))
        # Nothing relabelled: the same version, the same digest, with or without the labels.
        plain, _ = store.commit("plain", episode_ids=["ep-a", "ep-b"])
        same, _ = store.commit("same", episode_ids=["ep-a", "ep-b"], labels=version_labels(store))
        assert same == plain
        relabel(store, "ep-a", Label(outcome="near_success"), annotator="bo", role="lead")
        _, v1 = store.commit("v1", episode_ids=["ep-a", "ep-b"], labels=version_labels(store))
        relabel(store, "ep-b", Label(outcome="failure"), annotator="bo", role="lead")
        relabel(store, "ep-c", Label(outcome="failure"), annotator="bo", role="lead")
        # A child takes the labels of the episodes it adds; those it keeps stay as the parent froze them.
        _, child = store.commit(
            "v1+c", parent="v1", add=["ep-c"], labels=version_labels(store, Rule.MAJORITY)
        )
    pins = {e.episode_id: (e.outcome, e.labels) for e in v1.episodes}
    assert pins == {"ep-a": ("near_success", "lead:4"), "ep-b": ("success", "")}
    assert {e.episode_id: (e.outcome, e.labels) for e in child.episodes} == {
        **pins,
        "ep-c": ("failure", "majority:6"),  # one reviewer's failure: the operator's success does not vote
    }
