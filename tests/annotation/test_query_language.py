"""The curation query language: what parses to what, what each operator matches, and the errors
(one line, the column, a caret) for queries that do not read."""

from __future__ import annotations

import datetime as dt

import pytest

from takeover.annotation.curation import FIELDS, EpisodeFacts, parse_query, pick, query_text
from takeover.annotation.query_language import And, Compare, Everything, Not, Op, Or, QueryError, matcher

from .curation_helpers import T0, facts, revision


def matches(query: str, episode: EpisodeFacts) -> bool:
    return matcher(parse_query(query), FIELDS)(episode)


# -- parsing -------------------------------------------------------------------------------------
def test_the_example_of_the_docs_parses_to_its_tree() -> None:
    q = 'label in (success, near-success) and interventions >= 1 and operator == "ada" and date >= 2026-12-01'
    assert parse_query(q) == And(
        And(
            And(
                Compare("label", Op.IN, ("success", "near_success")),
                Compare("interventions", Op.GE, (1,)),
            ),
            Compare("operator", Op.EQ, ("ada",)),
        ),
        Compare("date", Op.GE, (dt.date(2026, 12, 1),)),
    )


def test_precedence_is_not_then_and_then_or_and_parentheses_override() -> None:
    a, b, c = (Compare("steps", Op.GT, (n,)) for n in (1, 2, 3))
    assert parse_query("steps > 1 or steps > 2 and steps > 3") == Or(a, And(b, c))
    assert parse_query("(steps > 1 or steps > 2) and steps > 3") == And(Or(a, b), c)
    assert parse_query("not steps > 1 and steps > 2") == And(Not(a), b)
    assert parse_query("not (steps > 1 and steps > 2)") == Not(And(a, b))
    assert query_text(Or(a, And(b, c))) == "steps > 1 or steps > 2 and steps > 3"
    assert query_text(And(Or(a, b), c)) == "(steps > 1 or steps > 2) and steps > 3"
    assert query_text(And(a, And(b, c))) == "steps > 1 and (steps > 2 and steps > 3)"


def test_empty_query_and_all_take_everything() -> None:
    assert parse_query("") == Everything()
    assert parse_query("   ") == Everything()
    assert parse_query("ALL") == Everything()
    assert query_text(Everything()) == "all"


def test_keywords_and_field_names_in_any_case_aliases_to_their_field() -> None:
    assert parse_query("Takeovers >= 1 AND NOT Has_Intervention") == And(
        Compare("interventions", Op.GE, (1,)), Not(Compare("has_intervention", Op.EQ, (True,)))
    )
    assert parse_query("outcome = Near-Success") == Compare("label", Op.EQ, ("near_success",))
    assert parse_query("policy_id ~ PI0") == Compare("policy", Op.HAS, ("PI0",))


def test_values_are_read_in_their_fields_units() -> None:
    assert parse_query("duration >= 1.5min").values == (90.0,)
    assert parse_query("duration < 2h").values == (7200.0,)
    assert parse_query("duration < 500ms").values == (0.5,)
    assert parse_query("duration < 30s").values == (30,)
    assert parse_query("agreement < 75%").values == (0.75,)
    assert parse_query("human_fraction >= 0.25").values == (0.25,)
    assert parse_query("progress >= 50%").values == (50,)
    assert parse_query("started >= 2026-12-01T14:30").values == (dt.datetime(2026, 12, 1, 14, 30),)
    assert parse_query("id == 3f2a9c0b1d4e").values == ("3f2a9c0b1d4e",)
    assert parse_query('task == "put \\"it\\" down\\n"').values == ('put "it" down\n',)
    assert parse_query("seed in (1, 2, none)").values == (1, 2, None)


def test_the_example_is_written_back_canonically() -> None:
    q = parse_query('label in (success, near_success) and operator = "ada" and duration >= 2min')
    assert query_text(q) == "label in (success, near-success) and operator == ada and duration >= 120.0"
    assert query_text(parse_query('task == "and"')) == 'task == "and"'
    assert query_text(parse_query("has_intervention == false")) == "has_intervention == false"
    assert query_text(parse_query("has_intervention == true")) == "has_intervention"


# -- errors --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("query", "message", "column"),
    [
        ("lable == success", "unknown field 'lable'; did you mean 'label'?", 1),
        ("label == sucess", "label: expected success, near-success, failure or none, got 'sucess'", 10),
        ("steps >", "expected a value for steps (a number), got the end of the query", 8),
        ("steps > 5m", "steps: expected a number, got '5m'", 9),
        ("(steps > 3", "expected ')' to close the '(' at column 1, got the end of the query", 11),
        ("steps > 3)", "this ')' closes no '('", 10),
        ("steps > 3 steps < 5", "expected 'and', 'or' or the end of the query, got 'steps'", 11),
        ("task < b", "task is text: compare it with ==, !=, in, not in, ~ or !~", 6),
        ("task", "expected an operator after 'task'", 5),
        ('task == "open', 'unterminated text: the " that opens it is never closed', 9),
        ("date >= 2026-12-1", "date: expected a date (2026-12-01), got '2026-12-1'", 9),
        ("date == 2026-12-01T10:00", "a date is a day (2026-12-01), without a time", 9),
        ("steps == none", "steps always has a value", 10),
        ("seed < none", "none is only compared with ==, !=, in or not in, not with '<'", 8),
        ("steps > 3%", "steps: steps is not a fraction or a percentage; write it without %", 9),
        ("steps in 3", "expected '(' and a list of values after 'in'", 10),
        ("steps in (3 4)", "expected ',' or ')' in the list of values, got '4'", 13),
        ("and steps > 3", "expected a field name, 'not' or '(', got 'and'", 1),
        ("steps > 3 && steps < 4", "unexpected character '&'", 11),
        ('task == "a\\qb"', "unknown escape \\q in quoted text", 11),
        ("recovered == maybe", "recovered: expected true or false, got 'maybe'", 14),
    ],
)
def test_a_query_that_does_not_read_is_one_line_with_its_column(
    query: str, message: str, column: int
) -> None:
    with pytest.raises(QueryError) as caught:
        parse_query(query)
    err = caught.value
    assert message in str(err)
    assert str(err).endswith(f"(column {column})")
    assert "\n" not in str(err)
    line, caret = err.caret().split("\n")
    assert line == f"  {query}"
    assert caret == "  " + " " * (column - 1) + "^"


# -- evaluation ----------------------------------------------------------------------------------
def test_each_operator_on_text_words_numbers_dates_and_sets() -> None:
    ep = facts(
        "e1",
        [
            revision(1, "failure", "ada"),
            revision(2, "success", "bo", "annotator", quality="clean", tags=("tidy", "Keep")),
        ],
        num_takeovers=2,
        human=30,
        seed=None,
        task="Pick the RED cube",
        outcome="failure",
        success=False,
    )
    day = dt.datetime.fromtimestamp(T0).date()
    assert matches("task ~ red", ep) and not matches("task !~ red", ep)
    assert matches("task == 'Pick the RED cube'", ep) and not matches("task == 'pick the red cube'", ep)
    assert matches("label == success and source == annotator and verdict == failure", ep)
    assert matches("quality == clean and category == none and progress == none", ep)
    assert matches("interventions == 2 and has_intervention and human_steps in (10, 30)", ep)
    assert matches("human_fraction == 25% and human_fraction > 0.2 and not human_fraction >= 0.3", ep)
    assert matches("seed == none and not seed >= 0 and seed != 3 and not seed < 3", ep)
    assert matches(f"date == {day.isoformat()} and date >= {day.isoformat()} and not date > {day}", ep)
    started = dt.datetime.fromtimestamp(T0).replace(microsecond=0)
    assert matches(f"started >= {started.isoformat()} and duration == 12s", ep)
    assert matches("annotator == bo and annotator in (zed, ada) and annotator != cy", ep)
    assert matches("tags == Keep and tags ~ ID and tags != tidyish and not tags == none", ep)
    assert matches("annotators == 1 and agreement == 1 and not disagreement", ep)


def test_unlabelled_and_disagreeing_episodes() -> None:
    unlabelled = facts("e2", [], outcome="", success=None)
    assert matches("label == none and source == none and annotator == none and annotators == 0", unlabelled)
    assert matches("label != success and label not in (failure)", unlabelled)
    split = facts(
        "e3", [revision(3, "failure", "bo", "annotator"), revision(4, "success", "cy", "annotator")]
    )
    assert matches("disagreement and agreement == 0.5 and annotators == 2", split)
    assert matches("label == failure and source == majority", split)  # a tie goes to the cautious outcome


def test_pick_keeps_order_and_adds_up_the_selection() -> None:
    eps = [
        facts("a", num_takeovers=1, human=60, num_steps=120),
        facts("b", [revision(5, "failure", "bo", "lead", episode_id="b")], num_steps=80),
        facts("c", [], outcome="", success=None, num_steps=40),
    ]
    chosen = pick(eps, "steps >= 80")
    assert chosen.ids == ["a", "b"]
    assert chosen.query == "steps >= 80"
    s = chosen.stats
    assert (s.episodes, s.steps, s.interventions, s.with_intervention, s.human_steps) == (2, 200, 1, 1, 60)
    assert s.outcomes == {"failure": 1, "near_success": 0, "success": 1, "none": 0}
    assert s.human_fraction == pytest.approx(60 / 200)
    assert s.interventions_per_attempt == 0.5
    assert s.hours == pytest.approx(24 / 3600)
    assert s.agreement is None and s.annotated == 0
    assert pick(eps, "label == none").ids == ["c"]
    assert pick(eps, "").ids == ["a", "b", "c"]


def test_the_docs_list_every_field_alias_and_operator() -> None:
    from pathlib import Path

    from takeover.annotation.query_language import OPS

    doc = (Path(__file__).resolve().parents[2] / "docs" / "curation.md").read_text(encoding="utf-8")
    rows = {line.split("|")[1].strip() for line in doc.splitlines() if line.startswith("| `")}
    for spec in FIELDS:
        assert f"`{spec.name}`" in rows, spec.name
        for alias in spec.aliases:
            assert f"`{alias}`" in doc, alias
    for op in {o for ops in OPS.values() for o in ops}:
        assert f"`{op}" in doc, op
