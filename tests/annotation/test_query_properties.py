"""Properties of the curation query language (Hypothesis): a printed query parses back to itself,
and evaluation obeys the laws of and, or and not over random episode sets; the human steps
replayed from control events equal the control source the real state machine records."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from takeover.annotation.curation import FIELDS, EpisodeFacts, human_steps, pick, query_text
from takeover.annotation.labels import Rule
from takeover.annotation.query_language import (
    OPS,
    ORDERED,
    And,
    Compare,
    Everything,
    FieldSpec,
    Kind,
    Node,
    Not,
    Op,
    Or,
    Unit,
    matcher,
)
from takeover.annotation.query_parser import parse
from takeover.app.control.arbitration import EVENTS, SOURCE
from takeover.storage.label_revisions import OUTCOMES, QUALITIES
from takeover.storage.schema import END_REASONS, ControlSource
from takeover.teleop.state_machine import Request, TakeoverStateMachine

from .curation_helpers import T0, facts, revision

WORDS = ("ada", "bo", "cube", "pick", "tidy", "near")
"""A small pool, so random queries and random episodes share values."""


# -- random queries ------------------------------------------------------------------------------
def _values(spec: FieldSpec, op: Op) -> st.SearchStrategy[Any]:
    text = st.one_of(st.sampled_from(WORDS), st.text(min_size=1, max_size=8))
    kind = spec.kind
    if kind is Kind.BOOL:
        base: st.SearchStrategy[Any] = st.booleans()
    elif kind is Kind.WORD:
        base = st.sampled_from(spec.words) if spec.words else text
    elif kind in (Kind.TEXT, Kind.SET):
        base = text
    elif kind is Kind.NUMBER:
        bound = 1.0 if spec.unit is Unit.FRACTION else 200.0
        base = st.one_of(
            st.integers(-5, 300), st.floats(-bound, bound * 1.5, allow_nan=False, allow_infinity=False)
        )
    elif kind is Kind.DATE:
        base = st.dates(dt.date(2023, 11, 10), dt.date(2023, 11, 20))
    else:
        base = st.datetimes(dt.datetime(2023, 11, 13), dt.datetime(2023, 11, 16)).map(
            lambda d: d.replace(microsecond=0)
        )
    if (spec.nullable or kind is Kind.SET) and op not in ORDERED and op not in (Op.HAS, Op.NOT_HAS):
        base = st.one_of(st.none(), base)
    return base


@st.composite
def comparisons(draw: st.DrawFn) -> Compare:
    spec = draw(st.sampled_from(FIELDS))
    op = draw(st.sampled_from(OPS[spec.kind]))
    values = _values(spec, op)
    if op in (Op.IN, Op.NOT_IN):
        return Compare(spec.name, op, tuple(draw(st.lists(values, min_size=1, max_size=3))))
    if op in (Op.HAS, Op.NOT_HAS):
        values = values.filter(lambda v: v is not None)
    return Compare(spec.name, op, (draw(values),))


queries: st.SearchStrategy[Node] = st.recursive(
    st.one_of(comparisons(), st.just(Everything())),
    lambda inner: st.one_of(st.builds(And, inner, inner), st.builds(Or, inner, inner), st.builds(Not, inner)),
    max_leaves=6,
)


# -- random episodes -----------------------------------------------------------------------------
@st.composite
def episodes(draw: st.DrawFn, episode_id: str = "e") -> EpisodeFacts:
    steps = draw(st.integers(0, 200))
    annotators = draw(st.lists(st.sampled_from(("ada", "bo", "cy")), unique=True, max_size=3))
    heads = []
    for i, who in enumerate(annotators):
        outcome = draw(st.sampled_from(OUTCOMES))
        heads.append(
            revision(
                i + 1,
                outcome,
                who,
                draw(st.sampled_from(("operator", "annotator", "lead"))),
                episode_id=episode_id,
                quality=draw(st.sampled_from(QUALITIES)) if outcome == "success" else None,
                failure_category=draw(st.sampled_from(("stuck", "collision")))
                if outcome == "failure"
                else None,
                progress=draw(st.none() | st.integers(0, 100)),
                tags=tuple(draw(st.lists(st.sampled_from(WORDS), unique=True, max_size=2))),
                notes=draw(st.sampled_from(("", "tidy", "near the edge"))),
            )
        )
    start = T0 + draw(st.integers(-3 * 86400, 3 * 86400))
    takeovers = draw(st.integers(0, 3))
    return facts(
        episode_id,
        heads,
        human=draw(st.integers(0, steps)) if takeovers else 0,
        derived=frozenset(draw(st.lists(st.sampled_from(("smoothing", "training_labels")), max_size=2))),
        rule=draw(st.sampled_from(list(Rule))),
        task=draw(st.sampled_from(("pick the cube", "near the tidy box"))),
        operator=draw(st.sampled_from(WORDS)),
        started_at=start,
        ended_at=start + draw(st.floats(0, 600)),
        num_steps=steps,
        seed=draw(st.none() | st.integers(0, 300)),
        end_reason=draw(st.sampled_from(("", *END_REASONS))),
        num_takeovers=takeovers,
        num_handbacks=draw(st.integers(0, takeovers)),
        outcome=draw(st.sampled_from(("", *OUTCOMES))),
        success=draw(st.none() | st.booleans()),
        cut_at=draw(st.none() | st.just(start + 1.0)),
    )


episode_sets = st.lists(st.integers(0, 10**6), max_size=8, unique=True).flatmap(
    lambda ids: st.tuples(*(episodes(f"e{i}") for i in ids)).map(list)
)


# -- properties ----------------------------------------------------------------------------------
@settings(max_examples=400, deadline=None)
@given(queries)
def test_a_printed_query_parses_back_to_the_same_tree(query: Node) -> None:
    text = query_text(query)
    assert parse(text, FIELDS) == query
    assert query_text(parse(text, FIELDS)) == text


@settings(max_examples=150, deadline=None)
@given(queries, queries, episode_sets)
def test_and_or_not_are_intersection_union_and_complement(a: Node, b: Node, eps: list[EpisodeFacts]) -> None:
    every = {e.id for e in eps}

    def ids(q: Node) -> set[str]:
        return set(pick(eps, q).ids)

    assert ids(And(a, b)) == ids(a) & ids(b)
    assert ids(Or(a, b)) == ids(a) | ids(b)
    assert ids(Not(a)) == every - ids(a)
    assert ids(Not(Not(a))) == ids(a)
    assert ids(Not(And(a, b))) == ids(Or(Not(a), Not(b)))  # De Morgan
    assert ids(Everything()) == every
    assert pick(eps, query_text(a)).ids == pick(eps, a).ids  # evaluating the text = evaluating the tree


@settings(max_examples=200, deadline=None)
@given(comparisons(), episodes())
def test_negated_operators_are_complements_and_in_is_a_chain_of_equals(c: Compare, ep: EpisodeFacts) -> None:
    def holds(node: Node) -> bool:
        return matcher(node, FIELDS)(ep)

    opposite = {Op.EQ: Op.NE, Op.IN: Op.NOT_IN, Op.HAS: Op.NOT_HAS}
    opposite.update({v: k for k, v in opposite.items()})
    if c.op in opposite:
        assert holds(Compare(c.field, opposite[c.op], c.values)) == (not holds(c))
    if c.op is Op.IN:
        assert holds(c) == any(holds(Compare(c.field, Op.EQ, (v,))) for v in c.values)
    if c.op in ORDERED and getattr(ep, c.field) is None:
        assert not holds(c)  # a field without a value is neither below nor above anything


# -- human steps from control events -------------------------------------------------------------
REQUESTS = [r for r in Request if r is not Request.RAMP_END]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(st.sampled_from(REQUESTS), max_size=2), min_size=1, max_size=60),
    st.booleans(),
    st.booleans(),
    st.integers(0, 4),
)
def test_human_steps_replayed_from_events_equal_the_recorded_control_source(
    requests: list[list[Request]], ramp: bool, latched: bool, ramp_steps: int
) -> None:
    """Run the real takeover state machine as the control loop does (consume at each step, record
    each consumed transition as an event at that step, record the mode's control source), then
    replay the events: the human steps must be the steps recorded as HUMAN."""
    sm = TakeoverStateMachine(ramp=ramp)
    if latched:  # an attempt that starts under a latched e-stop
        sm.request(Request.ESTOP, 0.0)
        sm.consume(0.0)
    source, events, in_ramp = [], [], 0
    for step, asked in enumerate(requests):
        for r in asked:
            sm.request(r, float(step))
        if sm.mode.value == "RAMP":
            in_ramp += 1
            if in_ramp > ramp_steps:  # the loop asks for the end of the hand-back window itself
                sm.request(Request.RAMP_END, float(step))
        else:
            in_ramp = 0
        for tr in sm.consume(float(step)):
            events.append((str(EVENTS[tr.request]), step))
        source.append(int(SOURCE[sm.mode]))
    recorded = int(np.count_nonzero(np.asarray(source) == int(ControlSource.HUMAN)))
    assert human_steps(events, len(source)) == recorded
