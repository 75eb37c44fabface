"""The selection: the matching episodes as a sortable table, and their statistics with the
outcome mix drawn as bars (pyqtgraph)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import pyqtgraph as pg
from PyQt6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PyQt6.QtGui import QColor
from PyQt6.QtWidgets import QFormLayout, QGroupBox, QLabel, QVBoxLayout

from takeover.annotation.curation import EpisodeFacts, Statistics
from takeover.annotation.labels import CAUTION, voters

OUTCOME_COLORS = {
    "success": "#2e7d32",
    "near_success": "#f9a825",
    "failure": "#c62828",
    "none": "#90a4ae",
}
OUTCOME_NAMES = {"success": "success", "near_success": "near-success", "failure": "failure", "none": "none"}

Column = tuple[str, Callable[[EpisodeFacts], Any], Callable[[EpisodeFacts], Any]]
"""(header, shown text, sort key)."""


def _minute(t: float) -> str:
    return dt.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M")


def _agree(e: EpisodeFacts) -> str:
    voting = voters(e.heads)
    return f"{round(e.agreement * len(voting))}/{len(voting)}" if voting else "-"


COLUMNS: tuple[Column, ...] = (
    ("id", lambda e: e.id, lambda e: e.id),
    (
        "started",
        lambda e: dt.datetime.fromtimestamp(e.started).strftime("%Y-%m-%d %H:%M"),
        lambda e: e.started,
    ),
    ("task", lambda e: e.task, lambda e: e.task),
    ("operator", lambda e: e.operator, lambda e: e.operator),
    ("steps", lambda e: e.steps, lambda e: e.steps),
    ("duration", lambda e: f"{e.duration:.1f} s", lambda e: e.duration),
    ("takeovers", lambda e: e.interventions, lambda e: e.interventions),
    ("human", lambda e: f"{100 * e.human_fraction:.0f} %", lambda e: e.human_fraction),
    ("label", lambda e: OUTCOME_NAMES[e.label or "none"], lambda e: CAUTION.index(e.label) if e.label else 9),
    ("source", lambda e: e.source or "-", lambda e: e.source or ""),
    ("agree", _agree, lambda e: e.agreement),
    ("ended", lambda e: e.end_reason or "-", lambda e: e.end_reason or ""),
)
SORT_ROLE = Qt.ItemDataRole.UserRole


class EpisodeModel(QAbstractTableModel):
    """The selected episodes, one row each (the columns of :data:`COLUMNS`)."""

    def __init__(self) -> None:
        super().__init__()
        self.episodes: list[EpisodeFacts] = []

    def show(self, episodes: Sequence[EpisodeFacts]) -> None:
        self.beginResetModel()
        self.episodes = list(episodes)
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex | None = None) -> int:
        return len(self.episodes)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex | None = None) -> int:
        return len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = 0) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section][0]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = 0) -> Any:
        if not index.isValid():
            return None
        e = self.episodes[index.row()]
        name, shown, key = COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return str(shown(e))
        if role == SORT_ROLE:
            return key(e)
        if role == Qt.ItemDataRole.ForegroundRole and name == "label":
            return QColor(OUTCOME_COLORS[e.label or "none"])
        if role == Qt.ItemDataRole.TextAlignmentRole and name in ("steps", "duration", "takeovers", "human"):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole and name in ("task", "id"):
            return shown(e)
        return None


class StatsPanel(QGroupBox):
    """The selection's figures, and its outcome mix as bars."""

    ROWS = (
        ("episodes", "episodes"),
        ("steps", "steps"),
        ("hours", "hours"),
        ("interventions", "interventions / attempt"),
        ("with_intervention", "with a takeover"),
        ("human", "human steps"),
        ("agreement", "agreement"),
        ("disagreements", "disagreements"),
    )

    def __init__(self) -> None:
        super().__init__("Statistics")
        form = QFormLayout()
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight)
        form.setHorizontalSpacing(14)
        self.values: dict[str, QLabel] = {}
        for key, caption in self.ROWS:
            label = QLabel("—")
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setWordWrap(True)
            self.values[key] = label
            form.addRow(caption, label)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        self.plot.setFixedHeight(170)
        self.plot.showGrid(y=True, alpha=0.25)
        self.plot.setLabel("left", "episodes")
        self.plot.getAxis("bottom").setTicks([[(i, OUTCOME_NAMES[o]) for i, o in enumerate(OUTCOME_COLORS)]])
        self.plot.setXRange(-0.6, len(OUTCOME_COLORS) - 0.4, padding=0)
        self.bars = pg.BarGraphItem(
            x=list(range(len(OUTCOME_COLORS))),
            height=[0] * len(OUTCOME_COLORS),
            width=0.7,
            brushes=[pg.mkBrush(c) for c in OUTCOME_COLORS.values()],
            pens=[pg.mkPen(c) for c in OUTCOME_COLORS.values()],
        )
        self.plot.addItem(self.bars)
        box = QVBoxLayout(self)
        box.addLayout(form)
        box.addWidget(QLabel("outcome mix"))
        box.addWidget(self.plot)

    def show_stats(self, s: Statistics) -> None:
        v = self.values
        v["episodes"].setText(str(s.episodes))
        v["steps"].setText(f"{s.steps:,}")
        v["hours"].setText(f"{s.hours:.2f}")
        v["interventions"].setText(f"{s.interventions_per_attempt:.2f}  ({s.interventions} in all)")
        v["with_intervention"].setText(
            f"{s.with_intervention} ({100 * s.with_intervention / s.episodes:.0f} %)" if s.episodes else "0"
        )
        v["human"].setText(f"{100 * s.human_fraction:.1f} % of steps  ({s.human_steps:,})")
        v["agreement"].setText(
            f"{s.agreement:.2f}  over {s.annotated} episode(s)"
            if s.agreement is not None
            else "—  (no episode has 2+ annotators)"
        )
        v["agreement"].setToolTip("the mean agreement of the episodes labelled by two or more annotators")
        v["disagreements"].setText(str(s.disagreements))
        heights = [s.outcomes.get(o, 0) for o in OUTCOME_COLORS]
        self.bars.setOpts(height=heights)
        self.plot.setYRange(0, max(1, *heights) * 1.1, padding=0)
        tip = ", ".join(f"{n} {OUTCOME_NAMES[o]}" for o, n in zip(OUTCOME_COLORS, heights, strict=True))
        self.plot.setToolTip(tip)

    def outcome_heights(self) -> list[int]:
        """The bars' heights as drawn (success, near-success, failure, none)."""
        return [int(h) for h in self.bars.opts["height"]]
