"""Plots of the episode under review on the step axis, with a cursor line kept on the scrubber's
step: executed (solid) and proposed (dashed) actions, the state, and each recorded stream (policy
outputs such as value estimates), one plot each. A click on a plot seeks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import QVBoxLayout, QWidget

from takeover.annotation.review_episode import ReviewEpisode, Series
from takeover.app.gui.axis_ticks import keep_round_ticks

PALETTE = ("#c62828", "#2e7d32", "#1565c0", "#ef6c00", "#6a1b9a", "#00838f", "#5d4037", "#616161")
"""One colour per component (the same component, the same colour in every plot)."""
CURSOR_PEN = pg.mkPen("#d32f2f", width=2)


def plot_title(title: str, series: Series) -> str:
    """The plot's name, then each component's name in its curve's colour (the legend)."""
    words = {"action": "action <span style='color:#757575'>(solid: executed, dashed: proposed)</span>"}
    names = "  ".join(
        f"<span style='color:{PALETTE[k % len(PALETTE)]}'>{name}</span>"
        for k, name in enumerate(series.components)
        if name != title
    )
    more = len(series.components)
    if series.total > more:
        names += f"&nbsp;&nbsp;<span style='color:#757575'>(the first {more} of {series.total})</span>"
    return f"<b>{words.get(title, title)}</b>&nbsp;&nbsp;&nbsp;{names}"


class Plots(QWidget):
    """The stacked, x-linked plots of one episode; emits ``seek(step)`` on a click."""

    seek = pyqtSignal(int)

    def __init__(self) -> None:
        super().__init__()
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground("w")
        self.view.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.view.ci.layout.setSpacing(2)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.addWidget(self.view)
        self.plots: dict[str, pg.PlotItem] = {}
        """By title: 'action', 'state', then each stream's name."""
        self.cursors: list[pg.InfiniteLine] = []
        self.curves: dict[str, list[pg.PlotDataItem]] = {}
        """Each plot's curves, reused from one episode to the next."""
        self.episode: ReviewEpisode | None = None
        self.view.scene().sigMouseClicked.connect(self._clicked)

    def set_episode(self, episode: ReviewEpisode | None) -> None:
        """Plot ``episode``. The plots of the previous episode are reused when they have the same
        names (the usual case): only their data change, so moving on to the next episode costs
        little on the GUI thread."""
        self.episode = episode
        wanted: list[tuple[str, list[tuple[Series, Qt.PenStyle]]]] = []
        if episode is not None and episode.num_steps > 0:
            executed, proposed = episode.action_series()
            wanted.append(("action", [(executed, Qt.PenStyle.SolidLine), (proposed, Qt.PenStyle.DashLine)]))
            wanted.append(("state", [(episode.state_series(), Qt.PenStyle.SolidLine)]))
            wanted.extend((s.name, [(s, Qt.PenStyle.SolidLine)]) for s in episode.stream_series())
        if [title for title, _ in wanted] != list(self.plots):
            self._make([title for title, _ in wanted])
        for title, series in wanted:
            self._fill(title, series)
        if episode is not None and self.plots:
            next(iter(self.plots.values())).setXRange(0, max(1, episode.last_step), padding=0.01)

    def _make(self, titles: list[str]) -> None:
        self.view.clear()
        self.plots.clear()
        self.cursors.clear()
        self.curves.clear()
        for title in titles:
            plot: pg.PlotItem = self.view.addPlot(row=len(self.plots), col=0)
            plot.setMenuEnabled(False)
            plot.hideButtons()
            plot.setMouseEnabled(x=False, y=False)
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.getAxis("left").setWidth(44)
            plot.getAxis("left").setStyle(maxTickLevel=1)
            keep_round_ticks(plot, most=3)
            cursor = pg.InfiniteLine(pos=0, angle=90, pen=CURSOR_PEN, movable=False)
            plot.addItem(cursor, ignoreBounds=True)
            self.cursors.append(cursor)
            if self.plots:
                plot.setXLink(next(iter(self.plots.values())))
                list(self.plots.values())[-1].hideAxis("bottom")
            self.plots[title] = plot
            self.curves[title] = []
        if self.plots:
            list(self.plots.values())[-1].setLabel("bottom", "step")

    def _fill(self, title: str, series: list[tuple[Series, Qt.PenStyle]]) -> None:
        plot, curves = self.plots[title], self.curves[title]
        plot.setTitle(plot_title(title, series[0][0]), size="9pt", justify="left")
        used = 0
        for s, style in series:
            for k in range(s.values.shape[1]):
                pen = pg.mkPen(PALETTE[k % len(PALETTE)], width=1.5, style=style)
                if used == len(curves):
                    curves.append(plot.plot(connect="finite"))
                curves[used].setPen(pen)
                curves[used].setData(s.x, s.values[:, k], connect="finite")
                used += 1
        for curve in curves[used:]:
            curve.setData([], [])
        plot.enableAutoRange(axis="y")

    def set_cursor(self, step: int) -> None:
        for line in self.cursors:
            line.setValue(step)

    def cursor_step(self) -> float | None:
        """Where the cursor lines are (None without an episode)."""
        return float(self.cursors[0].value()) if self.cursors else None

    def _clicked(self, event: Any) -> None:
        if self.episode is None or event.button() != Qt.MouseButton.LeftButton:
            return
        for plot in self.plots.values():
            if plot.sceneBoundingRect().contains(event.scenePos()):
                x = plot.vb.mapSceneToView(event.scenePos()).x()
                self.seek.emit(self.episode.clamp(int(np.floor(x + 0.5))))
                return
