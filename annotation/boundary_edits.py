"""Moving a takeover or hand-back, and marking the pre-intervention window: edits of an episode's
recorded boundaries, stored as revisions (:mod:`takeover.storage.boundary_edits`).

The recorded control source says who drove each step and is never changed. An edit says where a
recorded boundary counts from for what is derived from it:

- **move**: the takeover (or hand-back) counts from another step within its segment, between the
  neighbouring recorded boundaries (an operator who reacted late, a hand-back recorded before the
  operator let go). The derived pre-intervention window then ends at the moved takeover.
- **pre-intervention window**: before a takeover, the first step where the policy was already
  going wrong; its policy steps up to the takeover become the pre-intervention class of the
  derived training labels (:mod:`takeover.annotation.training_labels`), in place of the
  parameters' default window.

The newest edit of a boundary counts; an edit keeps what it does not change (a window marked
earlier stays when the boundary is moved, unless the window would no longer end before it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from takeover.annotation.boundaries import INTERVENTION_KINDS, Boundary, BoundaryKind, find_boundaries
from takeover.storage.boundary_edits import BoundaryEdit, EditDraft
from takeover.storage.errors import InvalidLabelError
from takeover.storage.schema import Episode
from takeover.storage.store import Store

KEEP: Literal["keep"] = "keep"


@dataclass(frozen=True)
class EffectiveBoundary:
    """A recorded takeover or hand-back as it counts after its edits."""

    kind: BoundaryKind
    recorded_step: int
    step: int
    """Where it counts from (the recorded step unless moved)."""
    pre_window_start: int | None
    """Takeovers: the first step of the marked pre-intervention window; None: the default window."""
    edit: BoundaryEdit | None
    """The edit that counts (None: as recorded)."""

    @property
    def moved(self) -> bool:
        return self.step != self.recorded_step


def recorded(episode: Episode) -> list[Boundary]:
    """The episode's takeovers and hand-backs as recorded, in step order."""
    return find_boundaries(episode, INTERVENTION_KINDS)


def effective_boundaries(episode: Episode, edits: Sequence[BoundaryEdit]) -> list[EffectiveBoundary]:
    """Each recorded takeover and hand-back of ``episode`` with the newest of ``edits`` that names it
    (edits of the episode's boundaries, as ``store.boundaries.current()`` gives them)."""
    newest: dict[tuple[str, int], BoundaryEdit] = {}
    for e in edits:
        key = (e.kind, e.recorded_step)
        if key not in newest or e.id > newest[key].id:
            newest[key] = e
    out = []
    for b in recorded(episode):
        found = newest.get((b.kind.value, b.step))
        out.append(
            EffectiveBoundary(
                b.kind,
                b.step,
                b.step if found is None else found.step,
                None if found is None else found.pre_window_start,
                found,
            )
        )
    return out


def _limits(bounds: Sequence[Boundary], i: int, num_steps: int) -> tuple[int, int]:
    """The steps boundary ``i`` may move to: after the previous recorded boundary, before the next."""
    lo = bounds[i - 1].step + 1 if i > 0 else 1
    hi = bounds[i + 1].step - 1 if i + 1 < len(bounds) else num_steps - 1
    return lo, hi


def edit_boundary(
    store: Store,
    episode_id: str,
    kind: str,
    recorded_step: int,
    *,
    step: int | None = None,
    pre_window_start: int | Literal["keep"] | None = KEEP,
    annotator: str,
    role: str = "annotator",
    notes: str = "",
    episode: Episode | None = None,
) -> BoundaryEdit:
    """Append an edit of the episode's ``kind`` boundary recorded at ``recorded_step``: move it to
    ``step`` and/or mark its pre-intervention window from ``pre_window_start`` (None: back to the
    default window; :data:`KEEP`: as the previous edit said). One-line errors
    (:class:`InvalidLabelError`) for a boundary the episode does not have, a step outside the
    boundary's segment, a window that does not end at its takeover."""
    ep = episode if episode is not None else store.read_episode(episode_id)
    bounds = recorded(ep)
    names = [b for b in bounds if b.kind.value == kind and b.step == recorded_step]
    if not names:
        listed = ", ".join(f"{b.kind.value} at {b.step}" for b in bounds) or "none"
        raise InvalidLabelError(
            f"episode {episode_id} has no {kind} recorded at step {recorded_step} (it has: {listed})"
        )
    i = bounds.index(names[0])
    previous = {
        (e.kind, e.recorded_step): e for e in store.boundaries.current([episode_id]).get(episode_id, [])
    }.get((kind, recorded_step))
    new_step = step if step is not None else (previous.step if previous else recorded_step)
    lo, hi = _limits(bounds, i, ep.num_steps)
    if not lo <= new_step <= hi:
        raise InvalidLabelError(
            f"the {kind} recorded at step {recorded_step} moves within its segment, steps {lo} to {hi} "
            f"(between the neighbouring boundaries), not to {new_step}"
        )
    if pre_window_start == KEEP:
        window = previous.pre_window_start if previous else None
        if window is not None and window > new_step:
            window = new_step
    else:
        window = pre_window_start
    if window is not None:
        if kind != BoundaryKind.TAKEOVER.value:
            raise InvalidLabelError("a pre-intervention window is marked before a takeover, not a hand-back")
        first = bounds[i - 1].step if i > 0 else 0
        if not first <= window <= new_step:
            raise InvalidLabelError(
                f"the pre-intervention window before the takeover at step {new_step} starts between "
                f"step {first} (the previous boundary) and {new_step}, not at {window}"
            )
    draft = EditDraft(
        episode_id=episode_id,
        kind=kind,
        recorded_step=recorded_step,
        step=new_step,
        pre_window_start=window,
        notes=notes,
        annotator=annotator,
        role=role,
    )
    return store.boundaries.append([draft])[0]
