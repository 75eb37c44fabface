"""Labels of recorded attempts: their vocabulary, relabelling, agreement between annotators and the
rules that resolve a disagreement. Qt-free; the review and curation screens and the command line
use it, and storage keeps the revisions (:mod:`takeover.storage.label_revisions`).

A label says how an attempt went: its **outcome** (success, near-success, failure), for a success
its **quality** (clean, with side effects, suboptimal), for a failure its **category** (a
configured list), how far it got (**progress**, 0..100 %), notes and tags. Every change is a new
revision; the operator's verdict at the end of the attempt is revision 1.

Several people may label one episode. What counts is each annotator's newest revision, the
episode's **heads**. The operator's verdict is a first word: once anyone has reviewed the episode
(as annotator or lead), the **voters** are the reviewers' heads and the operator's verdict no
longer votes, so one annotator can correct a verdict either way; until then the verdict is the
only voter.

- **agreement**: the fraction of voters whose outcome is the most common one (1.0 with one);
- **disagreement queue**: the episodes whose voters' outcomes differ, unless a lead's revision is
  newer than every other voter's (a lead has settled it; a later change of mind reopens it);
- **resolution**, by a rule: ``lead`` (default): the newest head made in the lead role wins, else
  ``majority``: the most common outcome, a tie going to the more cautious outcome (failure before
  near-success before success); a lead's word settles it either way.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from takeover.storage.errors import InvalidLabelError
from takeover.storage.label_revisions import (
    OUTCOMES,
    QUALITIES,
    Draft,
    Label,
    LabelResolver,
    LabelRevision,
    PinnedLabel,
    pin_text,
)

if TYPE_CHECKING:  # the configuration reads the vocabulary without loading the store's modules
    from takeover.storage.store import Store

CAUTION = ("failure", "near_success", "success")
"""The outcomes, most cautious first: a tie under ``majority`` goes to the earlier one."""
SUCCESS_QUALITIES = QUALITIES
DEFAULT_FAILURE_CATEGORIES = (
    "missed_grasp",
    "dropped_object",
    "collision",
    "wrong_object",
    "wrong_place",
    "stuck",
    "timeout",
    "unsafe",
    "other",
)
"""Why an attempt failed, unless the configuration says otherwise (``[labels] failure_categories``)."""
LABELLING_ROLES = ("annotator", "lead")
"""The roles a relabelling is made in ('operator' is the verdict at the end of an attempt)."""


class Rule(enum.StrEnum):
    """How the label that counts is chosen when annotators disagree."""

    LEAD = "lead"
    """The newest head made in the lead role wins; without one, ``majority``."""
    MAJORITY = "majority"
    """The most common outcome of the heads; a tie goes to the more cautious outcome."""


def parse_outcome(text: str) -> str:
    """An outcome as people type it ('near-success' or 'near_success', any case) -> its stored name."""
    name = text.strip().lower().replace("-", "_")
    if name not in OUTCOMES:
        raise InvalidLabelError(f"an outcome is success, near-success or failure, got {text!r}")
    return name


def shown(outcome: str) -> str:
    """An outcome as people read it: 'near-success' for 'near_success'."""
    return outcome.replace("_", "-")


def label_text(label: Label, *, progress: bool = True) -> str:
    """'success (clean), progress 100 %', 'failure: collision', 'near-success'."""
    text = shown(label.outcome)
    if label.quality:
        text += f" ({shown(label.quality)})"
    if label.failure_category:
        text += f": {label.failure_category}"
    if progress and label.progress is not None:
        text += f", progress {label.progress} %"
    return text


@dataclass(frozen=True)
class Vocabulary:
    """The words a label may use beyond the fixed outcomes and qualities: the failure categories."""

    failure_categories: tuple[str, ...] = DEFAULT_FAILURE_CATEGORIES

    def __post_init__(self) -> None:
        cats = self.failure_categories
        if not cats:
            raise InvalidLabelError("the failure categories must name at least one")
        if len(set(cats)) != len(cats):
            raise InvalidLabelError(f"the failure categories must be distinct, got {list(cats)}")
        for c in cats:  # each one must be a category a label may hold
            Label(outcome="failure", failure_category=c).check()

    def check(self, label: Label) -> None:
        """Raise :class:`InvalidLabelError` (one line) unless ``label`` may be stored: the checks of
        :meth:`Label.check`, and a failure category from this vocabulary."""
        label.check()
        if label.failure_category is not None and label.failure_category not in self.failure_categories:
            raise InvalidLabelError(
                f"unknown failure category {label.failure_category!r}; the categories are "
                f"{', '.join(self.failure_categories)} (configured as [labels] failure_categories)"
            )


# -- relabelling --------------------------------------------------------------------------------
def relabel_many(
    store: Store,
    episode_ids: Sequence[str],
    label: Label,
    *,
    annotator: str,
    role: str = "annotator",
    vocabulary: Vocabulary | None = None,
) -> list[LabelRevision]:
    """Give each episode ``label`` as a new revision by ``annotator``, in one transaction (none is
    written if any is refused). Each revision's parent is the annotator's own newest revision of
    the episode, else the episode's newest. Returns the revisions, in the order of ``episode_ids``."""
    if role not in LABELLING_ROLES:
        raise InvalidLabelError(
            f"a relabelling is made as {' or '.join(LABELLING_ROLES)}, not {role!r} "
            "(the operator's verdict is given at the end of the attempt)"
        )
    (vocabulary or Vocabulary()).check(label)
    ids = list(dict.fromkeys(episode_ids))
    heads = store.labels.heads(ids)
    drafts = []
    for episode_id in ids:
        own = [h.id for h in heads.get(episode_id, []) if h.annotator == annotator]
        newest = [h.id for h in heads.get(episode_id, [])]
        parent = own[-1] if own else (max(newest) if newest else None)
        drafts.append(
            Draft(episode_id=episode_id, label=label, annotator=annotator, role=role, parent_id=parent)
        )
    return store.labels.append(drafts)


def relabel(
    store: Store,
    episode_id: str,
    label: Label,
    *,
    annotator: str,
    role: str = "annotator",
    vocabulary: Vocabulary | None = None,
) -> LabelRevision:
    """Give the episode ``label`` as a new revision (see :func:`relabel_many`)."""
    return relabel_many(store, [episode_id], label, annotator=annotator, role=role, vocabulary=vocabulary)[0]


# -- agreement and resolution -------------------------------------------------------------------
def voters(heads: Sequence[LabelRevision]) -> list[LabelRevision]:
    """The heads that vote: the reviewers' (annotator or lead) once there is one, else all (the
    operator's verdict)."""
    reviewed = [h for h in heads if h.role != "operator"]
    return reviewed or list(heads)


def agreement(heads: Sequence[LabelRevision]) -> float:
    """The fraction of voters whose newest outcome is the most common one (1.0 with one voter,
    and with none: nothing to disagree about)."""
    heads = voters(heads)
    if not heads:
        return 1.0
    return max(Counter(h.outcome for h in heads).values()) / len(heads)


def _newest_lead(heads: Sequence[LabelRevision]) -> LabelRevision | None:
    leads = [h for h in heads if h.role == "lead"]
    return max(leads, key=lambda h: h.id) if leads else None


def disagrees(heads: Sequence[LabelRevision]) -> bool:
    """True if the voters' outcomes differ and no lead's revision is newer than every other voter's."""
    heads = voters(heads)
    if len({h.outcome for h in heads}) < 2:
        return False
    lead = _newest_lead(heads)
    return lead is None or any(h.id > lead.id for h in heads if h.role != "lead")


@dataclass(frozen=True)
class Resolution:
    """The label that counts for an episode, and what it rests on."""

    outcome: str
    source: str
    """Who decided: 'lead' (a lead's word), 'majority' (several annotators), or the role of the
    only annotator ('operator', 'annotator', 'lead')."""
    revisions: tuple[int, ...]
    """The ids of the revisions it rests on, oldest first."""
    label: LabelRevision
    """The newest of those revisions (its quality, category, progress, notes and tags)."""
    agreement: float
    annotators: int
    """How many annotators' newest revisions it was chosen from."""
    tie: bool = False
    """True when ``majority`` broke a tie (towards the more cautious outcome)."""
    rule: Rule = field(default=Rule.LEAD)
    """The rule that was asked for."""


def resolve(heads: Sequence[LabelRevision], rule: Rule = Rule.LEAD) -> Resolution | None:
    """The label that counts under ``rule`` (None for an episode without revisions); see the
    module's doc."""
    if not heads:
        return None
    share = agreement(heads)
    heads = voters(heads)
    if rule is Rule.LEAD:
        lead = _newest_lead(heads)
        if lead is not None:
            return Resolution(lead.outcome, "lead", (lead.id,), lead, share, len(heads), rule=rule)
    counts = Counter(h.outcome for h in heads)
    most = max(counts.values())
    tied = [o for o in CAUTION if counts[o] == most]
    outcome = tied[0]
    backing = sorted((h for h in heads if h.outcome == outcome), key=lambda h: h.id)
    source = "majority" if len(heads) > 1 else heads[0].role
    ids = tuple(h.id for h in backing)
    return Resolution(outcome, source, ids, backing[-1], share, len(heads), tie=len(tied) > 1, rule=rule)


def disagreement_queue(store: Store, episode_ids: Sequence[str] | None = None) -> list[str]:
    """The episodes (of ``episode_ids``, or all) whose annotators disagree with nothing settling it
    (:func:`disagrees`), lowest agreement first, then by id. One catalog query per 10,000 episodes."""
    heads = store.labels.heads(episode_ids)
    open_ = [(agreement(h), eid) for eid, h in heads.items() if disagrees(h)]
    return [eid for _, eid in sorted(open_)]


def resolve_many(
    store: Store, episode_ids: Sequence[str] | None = None, rule: Rule = Rule.LEAD
) -> dict[str, Resolution]:
    """Episode id -> its resolved label under ``rule``, for the given episodes or all (episodes
    without revisions have no key)."""
    out = {}
    for episode_id, heads in store.labels.heads(episode_ids).items():
        res = resolve(heads, rule)
        if res is not None:
            out[episode_id] = res
    return out


def _only_the_verdict(heads: Sequence[LabelRevision]) -> bool:
    """True if the episode's one revision is the operator's verdict (revision 1), which the
    episode record, and so a version's entry, already holds."""
    return len(heads) == 1 and heads[0].role == "operator" and heads[0].parent_id is None


def version_labels(store: Store, rule: Rule = Rule.LEAD) -> LabelResolver:
    """What :meth:`Store.commit <takeover.storage.store.Store.commit>` gives each episode a new version
    takes: its label resolved under ``rule``, pinned as ``RULE:REVISIONS`` (e.g. ``lead:7``). An
    episode whose only revision is the operator's verdict gets no pin: its entry is the verdict,
    as it always was, so a version of unrelabelled episodes has the digest it had before labels."""

    def labels(episode_ids: Sequence[str]) -> dict[str, PinnedLabel]:
        out = {}
        for episode_id, heads in store.labels.heads(episode_ids).items():
            res = resolve(heads, rule)
            if res is not None and not _only_the_verdict(heads):
                out[episode_id] = PinnedLabel(res.outcome, pin_text(rule.value, res.revisions))
        return out

    return labels
