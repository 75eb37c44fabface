"""Live smoothing of the commanded action at hand-overs and between policy chunks.

Actions are end-effector *deltas* (plus a gripper effort): the station integrates them into the
commanded end-effector target, so the target itself never jumps when the source of the deltas
changes. What can jump is the delta (the target's velocity). These helpers blend deltas so that
each commanded step is a convex combination of the steps on either side of a boundary:

- :class:`CrossFade` blends from a frozen action to a live one over ``n`` periods with a
  minimum-jerk weight (takeover: from the policy's last delta to the human's; hand-back: from
  the human's last delta to the policy's);
- :class:`SpeedEnvelope` caps the speed through a hand-back at what the operator was doing, then
  lets it rise to the policy's;
- :class:`ChunkSplicer` executes action chunks open-loop and blends the first actions of a new
  chunk with the tail of the old one, so consecutive chunks join without a jump.
"""

from __future__ import annotations

import numpy as np

from takeover.annotation.blend import blend_weights


class CrossFade:
    """From a frozen action to a live one over ``steps`` periods (min-jerk)."""

    def __init__(self) -> None:
        self._from: np.ndarray | None = None
        self._weights = np.zeros(0)
        self._i = 0

    def start(self, origin: np.ndarray, steps: int) -> None:
        self._from = np.asarray(origin, dtype=np.float64).copy()
        self._weights = blend_weights(max(steps, 0))
        self._i = 0

    def cancel(self) -> None:
        self._from = None

    @property
    def active(self) -> bool:
        return self._from is not None and self._i < len(self._weights)

    @property
    def remaining(self) -> int:
        return max(len(self._weights) - self._i, 0) if self._from is not None else 0

    def apply(self, live: np.ndarray) -> np.ndarray:
        """This period's action: the blend, or ``live`` once the window is over."""
        if not self.active:
            return np.asarray(live, dtype=np.float32)
        assert self._from is not None
        w = float(self._weights[self._i])
        self._i += 1
        out = (1.0 - w) * self._from + w * np.asarray(live, dtype=np.float64)
        return out.astype(np.float32)


class ChunkSplicer:
    """Executes action chunks open-loop; splices a new chunk onto the tail of the previous one.

    ``open_loop_steps`` actions of each chunk are used before a new chunk is wanted. The first
    ``splice_steps`` actions of a new chunk are blended with the actions the old chunk had planned
    for the same periods (min-jerk weights); when the old chunk has no such action left, with the
    last action it produced. The raw (unblended) action is kept for the record.
    """

    def __init__(self, open_loop_steps: int, splice_steps: int) -> None:
        if open_loop_steps < 1:
            raise ValueError("open_loop_steps must be at least 1")
        self.open_loop_steps = open_loop_steps
        self.splice_steps = max(splice_steps, 0)
        self._chunk: np.ndarray | None = None
        self._pos = 0
        self._old_tail: np.ndarray | None = None
        self._weights = np.zeros(0)
        self._last: np.ndarray | None = None

    def clear(self) -> None:
        self._chunk = None
        self._pos = 0
        self._old_tail = None
        self._last = None

    @property
    def needs_chunk(self) -> bool:
        return self._chunk is None or self._pos >= min(self.open_loop_steps, len(self._chunk))

    @property
    def open_loop_left(self) -> int:
        """Actions left in the current chunk's open-loop window (0 without a chunk)."""
        if self._chunk is None:
            return 0
        return max(min(self.open_loop_steps, len(self._chunk)) - self._pos, 0)

    @property
    def peek(self) -> np.ndarray | None:
        """The raw action the current chunk has for this period (None if none)."""
        if self._chunk is None or self._pos >= len(self._chunk):
            return None
        return self._chunk[self._pos]

    def push(self, chunk: np.ndarray) -> None:
        """Start a new chunk (H, A); blending against what the old one still had planned."""
        chunk = np.asarray(chunk, dtype=np.float32)
        if chunk.ndim != 2 or len(chunk) == 0:
            raise ValueError(f"an action chunk must be (H, A) with H >= 1, got shape {chunk.shape}")
        tail: np.ndarray | None = None
        if self._chunk is not None and self._last is not None and self.splice_steps:
            rest = self._chunk[self._pos :]
            pad = max(self.splice_steps - len(rest), 0)
            tail = np.concatenate([rest[: self.splice_steps], np.repeat(self._last[None, :], pad, axis=0)])
        self._old_tail = tail
        n = 0 if tail is None else min(self.splice_steps, len(chunk))
        # weight of the new chunk at its k-th action: rises to 1 at index n (which is unblended)
        self._weights = blend_weights(n)
        self._chunk = chunk
        self._pos = 0

    def next(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(raw, spliced) action for this period, or None when the chunk is used up."""
        if self._chunk is None or self._pos >= len(self._chunk):
            return None
        k = self._pos
        raw = self._chunk[k]
        out = raw
        if self._old_tail is not None and k < len(self._weights):
            w = float(self._weights[k])
            out = ((1.0 - w) * self._old_tail[k] + w * raw).astype(np.float32)
        self._pos += 1
        self._last = out
        return raw, out


class SpeedEnvelope:
    """Caps the end-effector speed (norm of the first ``dims`` action components) through a hand-back.

    For the first ``hold`` periods (the blend) the cap is ``cap``: the fastest the commanded target
    moved in the last half second, so the blend adds no speed peak of its own. After that the cap
    rises by ``growth`` per period until the action fits under it: a policy that wants to move
    faster than the operator did accelerates into it instead of jumping to it. Only the magnitude
    is capped; the direction is the blend's.
    """

    def __init__(self, dims: int = 3) -> None:
        self.dims = dims
        self._cap = 0.0
        self._hold = 0
        self._growth = 0.0
        self._i = 0
        self._on = False

    def start(self, cap: float, hold: int, growth: float) -> None:
        self._cap = max(cap, 0.0)
        self._hold = max(hold, 0)
        self._growth = max(growth, 0.0)
        self._i = 0
        self._on = True

    def cancel(self) -> None:
        self._on = False

    @property
    def active(self) -> bool:
        return self._on

    def apply(self, action: np.ndarray) -> tuple[np.ndarray, bool]:
        """(capped action, whether the cap bound this period). Inactive: the action unchanged."""
        a = np.asarray(action, dtype=np.float32)
        if not self._on:
            return a, False
        if self._i >= self._hold:
            self._cap += self._growth
        self._i += 1
        speed = float(np.linalg.norm(a[: self.dims]))
        if speed <= self._cap:
            return a, False
        out = a.copy()
        out[: self.dims] *= self._cap / speed
        return out, True
