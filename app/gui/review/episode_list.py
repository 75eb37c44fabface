"""The episode list: the filters above, the table below, both views of a :class:`ReviewList`.

The table model only shows the rows the Qt-free list selects (filters and sorting are
:mod:`takeover.annotation.review_model`'s); a click on a header sorts by that column, and a label
written updates its row in place (the row stays where it is until the filters change, so the
list never jumps under the annotator).
"""

from __future__ import annotations

import time
from typing import Any

from PyQt6.QtCore import QAbstractTableModel, QDate, QModelIndex, QObject, QPoint, Qt, pyqtSignal
from PyQt6.QtGui import QBrush, QColor
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDateEdit,
    QGridLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from takeover.annotation.labels import shown
from takeover.annotation.review_model import (
    COLUMN_NAMES,
    COLUMNS,
    UNLABELLED,
    ReviewFilter,
    ReviewList,
    ReviewRow,
)
from takeover.storage.label_revisions import OUTCOMES

ANY = "any"
NO_DATE = QDate(2000, 1, 1)
"""The date edits' 'any' (their minimum, shown as 'any')."""
ROW_COLORS = {
    "failure": QColor("#fdecea"),
    "near_success": QColor("#fffbe0"),
}
"""Row tints by the label that counts (success rows stay white: most rows are)."""
DISAGREE_COLOR = QColor("#ef6c00")
HIDDEN_COLUMNS = ("station", "policy", "steps")
MAX_COLUMN_WIDTH = 220
"""A column is never made wider than this (a long task text is cut, its tooltip shows it all)."""
"""Columns hidden at first (their filters are above the list); a right click on the header shows them."""


class EpisodeTable(QAbstractTableModel):
    """The rows a filter lets through, sorted; one row per episode."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.listing: ReviewList | None = None
        self.rows: list[ReviewRow] = []
        self.filter = ReviewFilter()
        self.sort_column = "date"
        self.descending = False

    def set_listing(self, listing: ReviewList) -> None:
        self.listing = listing
        self.refilter()

    def refilter(self) -> None:
        self.beginResetModel()
        self.rows = (
            self.listing.select(self.filter, self.sort_column, self.descending)
            if self.listing is not None
            else []
        )
        self.endResetModel()

    def rowCount(self, parent: QModelIndex | None = None) -> int:
        return 0 if parent is not None and parent.isValid() else len(self.rows)

    def columnCount(self, parent: QModelIndex | None = None) -> int:
        return len(COLUMNS)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, column = self.rows[index.row()], COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return column.text(row)
        if role == Qt.ItemDataRole.TextAlignmentRole:
            side = Qt.AlignmentFlag.AlignRight if column.numeric else Qt.AlignmentFlag.AlignLeft
            return side | Qt.AlignmentFlag.AlignVCenter
        if role == Qt.ItemDataRole.BackgroundRole:
            color = ROW_COLORS.get(row.outcome)
            return QBrush(color) if color is not None else None
        if role == Qt.ItemDataRole.ForegroundRole and column.name == "agree" and row.disagrees:
            return QBrush(DISAGREE_COLOR)
        if role == Qt.ItemDataRole.ToolTipRole:
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row.record.started_at))
            return f"{row.episode_id}, {when}: {row.record.task}"
        return None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section].header
        return None

    def sort(self, column: int, order: Qt.SortOrder = Qt.SortOrder.AscendingOrder) -> None:
        self.sort_column = COLUMNS[column].name
        self.descending = order == Qt.SortOrder.DescendingOrder
        self.refilter()

    def position(self, episode_id: str) -> int | None:
        return next((i for i, r in enumerate(self.rows) if r.episode_id == episode_id), None)

    def update_row(self, row: ReviewRow) -> None:
        """Show ``row`` (relabelled) in place."""
        at = self.position(row.episode_id)
        if at is None:
            return
        self.rows[at] = row
        self.dataChanged.emit(self.index(at, 0), self.index(at, len(COLUMNS) - 1))


class FilterPanel(QWidget):
    """The list's filters; ``changed`` whenever one does."""

    changed = pyqtSignal()
    NAMED = ("task", "operator", "station", "policy")

    def __init__(self) -> None:
        super().__init__()
        self.combos: dict[str, QComboBox] = {name: self._combo() for name in (*self.NAMED, "annotator")}
        self.label = self._combo()
        self.label.addItems([ANY, *(shown(o) for o in OUTCOMES), "none"])
        self.intervention = self._combo()
        self.intervention.addItems([ANY, "with takeovers", "without"])
        self.since = self._date()
        self.until = self._date()
        self.disagreement = QCheckBox("disagreements only")
        self.todo = QCheckBox("not labelled by me")
        for box in (self.disagreement, self.todo):
            box.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            box.toggled.connect(lambda _on: self.changed.emit())
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(6)
        grid.setVerticalSpacing(3)
        cells = (
            ("task", self.combos["task"], "operator", self.combos["operator"]),
            ("station", self.combos["station"], "policy", self.combos["policy"]),
            ("label", self.label, "labelled by", self.combos["annotator"]),
            ("takeovers", self.intervention, "", None),
            ("from", self.since, "to", self.until),
        )
        for r, (a, wa, b, wb) in enumerate(cells):
            grid.addWidget(QLabel(a), r, 0)
            grid.addWidget(wa, r, 1)
            if wb is not None:
                grid.addWidget(QLabel(b), r, 2)
                grid.addWidget(wb, r, 3)
        grid.addWidget(self.disagreement, 3, 2, 1, 2)
        grid.addWidget(self.todo, 5, 1, 1, 3)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)

    def _combo(self) -> QComboBox:
        combo = QComboBox()
        combo.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        combo.setMinimumContentsLength(8)
        combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        combo.currentIndexChanged.connect(lambda _i: self.changed.emit())
        return combo

    def _date(self) -> QDateEdit:
        edit = QDateEdit()
        edit.setCalendarPopup(True)
        edit.setDisplayFormat("yyyy-MM-dd")
        edit.setMinimumDate(NO_DATE)
        edit.setSpecialValueText(ANY)
        edit.setDate(NO_DATE)
        edit.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        edit.dateChanged.connect(lambda _d: self.changed.emit())
        return edit

    def set_choices(self, choices: dict[str, list[str]]) -> None:
        """Offer the values the list holds, keeping each combo's choice when it is still there."""
        for name, combo in self.combos.items():
            keep = combo.currentText()
            combo.blockSignals(True)
            combo.clear()
            combo.addItems([ANY, *choices.get(name, [])])
            at = combo.findText(keep)
            combo.setCurrentIndex(max(0, at))
            combo.blockSignals(False)

    def set_filter(self, flt: ReviewFilter) -> None:
        """Show ``flt`` (the command line's filters); a named value not in the list is added."""
        values = {"task": flt.task, "operator": flt.operator, "station": flt.station, "policy": flt.policy}
        values["annotator"] = flt.annotator
        for name, value in values.items():
            if value is not None:
                combo = self.combos[name]
                if combo.findText(value) < 0:
                    combo.addItem(value)
                combo.setCurrentIndex(combo.findText(value))
        if flt.label is not None:
            self.label.setCurrentText("none" if flt.label == UNLABELLED else shown(flt.label))
        if flt.intervention is not None:
            self.intervention.setCurrentIndex(1 if flt.intervention else 2)
        for edit, when in ((self.since, flt.since), (self.until, flt.until)):
            if when is not None:
                t = time.localtime(when if edit is self.since else when - 1)
                edit.setDate(QDate(t.tm_year, t.tm_mon, t.tm_mday))
        self.disagreement.setChecked(flt.disagreement)
        self.todo.setChecked(flt.todo)

    def filter(self) -> ReviewFilter:
        def named(name: str) -> str | None:
            text = self.combos[name].currentText()
            return None if not text or text == ANY else text

        label_text = self.label.currentText()
        label = (
            None
            if label_text == ANY
            else UNLABELLED
            if label_text == "none"
            else label_text.replace("-", "_")
        )
        intervention = {1: True, 2: False}.get(self.intervention.currentIndex())
        return ReviewFilter(
            task=named("task"),
            operator=named("operator"),
            station=named("station"),
            policy=named("policy"),
            label=label,
            annotator=named("annotator"),
            intervention=intervention,
            since=_midnight(self.since.date()),
            until=_midnight(self.until.date().addDays(1)) if self.until.date() != NO_DATE else None,
            disagreement=self.disagreement.isChecked(),
            todo=self.todo.isChecked(),
        )


def _midnight(day: QDate) -> float | None:
    """The local midnight that starts ``day`` (None for 'any')."""
    if day <= NO_DATE:
        return None
    return time.mktime((day.year(), day.month(), day.day(), 0, 0, 0, 0, 0, -1))


class EpisodeList(QWidget):
    """Filters, a count, and the table."""

    def __init__(self) -> None:
        super().__init__()
        self.filters = FilterPanel()
        self.model = EpisodeTable(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # the keys belong to the review
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.table.setAlternatingRowColors(False)
        self.table.setWordWrap(False)
        self.table.verticalHeader().setVisible(False)  # type: ignore[union-attr]
        self.table.verticalHeader().setDefaultSectionSize(22)  # type: ignore[union-attr]
        header = self.table.horizontalHeader()
        assert header is not None
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        header.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        header.customContextMenuRequested.connect(self._column_menu)
        for name in HIDDEN_COLUMNS:
            self.table.setColumnHidden(COLUMN_NAMES.index(name), True)
        self.count = QLabel("")
        self.count.setObjectName("listCount")
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(4)
        box.addWidget(self.filters)
        box.addWidget(self.count)
        box.addWidget(self.table, 1)
        self.filters.changed.connect(self.apply_filter)

    def _column_menu(self, point: QPoint) -> None:
        """Show or hide columns (a right click on the header)."""
        menu = QMenu(self)
        for at, col in enumerate(COLUMNS):
            action = menu.addAction(col.header)
            assert action is not None
            action.setCheckable(True)
            action.setChecked(not self.table.isColumnHidden(at))
            action.toggled.connect(lambda on, at=at: self.table.setColumnHidden(at, not on))
        header = self.table.horizontalHeader()
        assert header is not None
        menu.exec(header.mapToGlobal(point))

    def set_listing(self, listing: ReviewList) -> None:
        self.filters.blockSignals(True)
        self.filters.set_choices(listing.choices())
        self.filters.blockSignals(False)
        self.model.filter = self.filters.filter()
        self.model.set_listing(listing)
        self._count()
        self.table.resizeColumnsToContents()
        for at in range(len(COLUMNS)):
            self.table.setColumnWidth(at, min(self.table.columnWidth(at), MAX_COLUMN_WIDTH))

    def apply_filter(self) -> None:
        self.model.filter = self.filters.filter()
        self.model.refilter()
        self._count()

    def _count(self) -> None:
        total = len(self.model.listing.rows) if self.model.listing is not None else 0
        self.count.setText(f"{len(self.model.rows)} of {total} episodes")

    def selected(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()  # type: ignore[union-attr]
        return self.model.rows[rows[0].row()].episode_id if rows else None

    def select(self, position: int) -> str | None:
        """Select the row at ``position`` (clamped); returns its episode id."""
        if not self.model.rows:
            return None
        position = min(max(0, position), len(self.model.rows) - 1)
        self.table.selectRow(position)
        self.table.scrollTo(self.model.index(position, 0))
        return self.model.rows[position].episode_id
