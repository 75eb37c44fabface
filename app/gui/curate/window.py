"""The curation screen: build a query, see the episodes it matches and their statistics, freeze
them as a version, browse the versions by lineage and diff two, export one.

It is a view. Every request that reads or writes the store goes to the :class:`SessionThread`
(one at a time, in order) or an :class:`ExportThread`; their answers come back through queued
signals. An answer to a query that has been typed over since is dropped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PyQt6.QtCore import QSortFilterProxyModel, Qt
from PyQt6.QtGui import QCloseEvent, QKeySequence, QShortcut
from PyQt6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMainWindow,
    QPushButton,
    QTableView,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from takeover.annotation.curation import Selection
from takeover.annotation.curation_session import CurationSession, Frozen, VersionInfo
from takeover.annotation.labels import Rule
from takeover.annotation.query_language import Node
from takeover.app.gui.curate.export_view import ExportView
from takeover.app.gui.curate.query_bar import QueryBar
from takeover.app.gui.curate.selection_view import SORT_ROLE, EpisodeModel, StatsPanel
from takeover.app.gui.curate.versions_view import FreezeDialog, VersionsView
from takeover.app.gui.curate.workers import Exported, ExportJob, ExportThread, SessionThread, StoreOpener

QUEUED = Qt.ConnectionType.QueuedConnection


def connect_queued(signal: Any, slot: Any) -> None:
    """``signal.connect(slot, QueuedConnection)`` (the slot runs in the GUI thread): PyQt6 takes
    the connection type, its type stubs do not, so the call goes through ``Any``."""
    signal.connect(slot, QUEUED)


class CurateWindow(QMainWindow):
    """Call :meth:`start` after constructing it (it opens the store on the worker thread)."""

    def __init__(
        self,
        opener: StoreOpener,
        *,
        rule: Rule = Rule.LEAD,
        query: str = "",
        where: str = "",
        export_base: Path | None = None,
    ) -> None:
        super().__init__()
        self.opener = opener
        self.setWindowTitle(f"Takeover — curation{f' — {where}' if where else ''}")
        self.session = SessionThread(opener, rule)
        self.export_thread: ExportThread | None = None
        self.selection: Selection | None = None
        self.versions: list[VersionInfo] = []
        self.total = 0
        self._wanted = 0
        """The number of the select request whose answer is wanted (older ones are dropped)."""
        self.dialog: FreezeDialog | None = None
        self.last_frozen: Frozen | None = None

        self.query = QueryBar()
        self.rule = QComboBox()
        self.rule.addItems([r.value for r in Rule])
        self.rule.setCurrentText(rule.value)
        self.rule.setToolTip("how the label that counts is chosen when annotators disagree")
        self.reload = QPushButton("Reload")
        self.reload.setToolTip("read the store again (episodes recorded or labelled since)")
        self.count = QLabel("opening the store …")
        self.count.setStyleSheet("font-weight: bold;")
        self.model = EpisodeModel()
        self.proxy = QSortFilterProxyModel()
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.table = QTableView()
        self.table.setModel(self.proxy)
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(1, Qt.SortOrder.AscendingOrder)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setAlternatingRowColors(True)
        self.table.verticalHeader().setVisible(False)  # type: ignore[union-attr]
        self.table.verticalHeader().setDefaultSectionSize(22)  # type: ignore[union-attr]
        header = self.table.horizontalHeader()
        assert header is not None
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)  # the task takes what is left
        header.setMinimumSectionSize(36)
        for col, width in enumerate((96, 116, 150, 70, 52, 70, 72, 56, 96, 76, 48, 72)):
            self.table.setColumnWidth(col, width)
        self.stats = StatsPanel()
        self.freeze_button = QPushButton("Freeze as version…")
        self.freeze_button.setToolTip(
            "freeze the episodes the query matches as a new tagged version (Ctrl+F)"
        )
        self.freeze_button.setEnabled(False)
        self.versions_view = VersionsView()
        self.export_view = ExportView(export_base or Path.cwd())
        self.message = QLabel("")
        self.statusBar().addWidget(self.message, 1)  # type: ignore[union-attr]
        self._layout()

        self.query.query_changed.connect(self._on_query)
        self.rule.currentTextChanged.connect(self._on_rule)
        self.reload.clicked.connect(self._reload)
        self.freeze_button.clicked.connect(self.open_freeze)
        self.versions_view.diff_requested.connect(self._diff)
        self.export_view.export_requested.connect(self.start_export)
        connect_queued(self.session.opened, self._on_opened)
        connect_queued(self.session.unavailable, self._on_unavailable)
        connect_queued(self.session.answered, self._on_answer)
        connect_queued(self.session.failed, self._on_failure)
        QShortcut(QKeySequence("Ctrl+F"), self).activated.connect(self.open_freeze)
        QShortcut(QKeySequence("Ctrl+L"), self).activated.connect(lambda: self.query.edit.setFocus())
        if query:
            self.query.set_text(query)

    def _layout(self) -> None:
        top = QHBoxLayout()
        top.addWidget(QLabel("Query"), 0, Qt.AlignmentFlag.AlignTop)
        top.addWidget(self.query, 1)
        side = QVBoxLayout()
        labels_row = QHBoxLayout()
        labels_row.addWidget(QLabel("labels by"))
        labels_row.addWidget(self.rule)
        side.addLayout(labels_row)
        side.addWidget(self.reload)
        side.addStretch(1)
        top.addLayout(side)

        left = QWidget()
        lbox = QVBoxLayout(left)
        lbox.setContentsMargins(0, 0, 0, 0)
        lbox.addWidget(self.count)
        lbox.addWidget(self.table)
        right = QWidget()
        rbox = QVBoxLayout(right)
        rbox.setContentsMargins(0, 0, 0, 0)
        rbox.addWidget(self.stats)
        rbox.addWidget(self.freeze_button)
        rbox.addStretch(1)
        right.setFixedWidth(380)
        middle = QHBoxLayout()
        middle.addWidget(left, 1)
        middle.addWidget(right)

        self.tabs = QTabWidget()
        self.tabs.addTab(self.versions_view, "Versions")
        self.tabs.addTab(self.export_view, "Export")
        self.tabs.setFixedHeight(240)

        central = QWidget()
        box = QVBoxLayout(central)
        box.setContentsMargins(10, 8, 10, 4)
        box.addLayout(top)
        box.addLayout(middle, 1)
        box.addWidget(self.tabs)
        self.setCentralWidget(central)
        self.resize(1400, 880)

    # -- lifecycle
    def start(self) -> None:
        self.session.start()

    def closeEvent(self, event: QCloseEvent | None) -> None:
        self.session.finish()
        if self.export_thread is not None and self.export_thread.isRunning():
            self.say("waiting for the export to finish before closing …")
            self.export_thread.wait()
        self.session.wait()
        if self.dialog is not None:
            self.dialog.close()
        super().closeEvent(event)

    def say(self, text: str, error: bool = False) -> None:
        self.message.setStyleSheet("color: #c62828;" if error else "")
        self.message.setText(text)

    # -- requests to the session thread
    def _on_opened(self, episodes: int) -> None:
        self.total = episodes
        self.session.submit("values", CurationSession.picker_values)
        self.session.submit("versions", CurationSession.versions)
        self._select(self.query.node)

    def _on_unavailable(self, message: str) -> None:
        self.count.setText("the store is not open")
        self.say(message, error=True)

    def _on_query(self, text: str, node: Node) -> None:
        self._select(node)

    def _select(self, node: Node) -> None:
        self._wanted = self.session.submit("select", lambda s: s.select(node))

    def _on_rule(self, rule: str) -> None:
        self._reload()

    def _reload(self) -> None:
        rule = Rule(self.rule.currentText())
        self.count.setText("reading the store …")
        self.session.submit("reload", lambda s: s.reload(rule))
        self.session.submit("values", CurationSession.picker_values)
        self._select(self.query.node)

    def _diff(self, first: str, second: str) -> None:
        self.session.submit("diff", lambda s: s.diff(first, second))

    def _on_answer(self, number: int, kind: str, result: Any) -> None:
        if kind == "select":
            if number == self._wanted:
                self._show_selection(result)
        elif kind == "reload":
            self.total = int(result)
        elif kind == "values":
            self.query.set_values(result)
        elif kind == "versions":
            self._show_versions(result)
        elif kind == "diff":
            self.versions_view.show_diff(result)
        elif kind == "freeze":
            self._frozen(result)

    def _on_failure(self, number: int, kind: str, message: str) -> None:
        if kind == "freeze" and self.dialog is not None:
            self.dialog.refused(message)
        elif kind == "diff":
            self.versions_view.show_diff([message])
        elif kind == "select" and number != self._wanted:
            return
        self.say(message, error=True)

    # -- showing answers
    def _show_selection(self, selection: Selection) -> None:
        self.selection = selection
        self.model.show(selection.episodes)
        n = len(selection.episodes)
        self.count.setText(f"{n} of {self.total} episodes match")
        self.stats.show_stats(selection.stats)
        self.freeze_button.setEnabled(n > 0)

    def _show_versions(self, versions: list[VersionInfo]) -> None:
        self.versions = versions
        self.versions_view.show_versions(versions)
        new = self.last_frozen.tag if self.last_frozen is not None else ""
        self.export_view.set_tags([v.tag for v in versions], select=new)

    # -- freezing
    def open_freeze(self) -> None:
        if self.selection is None or not self.selection.episodes or not self.query.reads:
            return
        query = self.query.text()
        dialog = FreezeDialog(self, query, len(self.selection.episodes), [v.tag for v in self.versions])
        dialog.submitted.connect(lambda tag, text, parent: self._freeze(query, tag, text, parent))
        self.dialog = dialog
        dialog.open()

    def _freeze(self, query: str, tag: str, message: str, parent: str) -> None:
        self.say(f"freezing {tag} …")
        self.session.submit("freeze", lambda s: s.freeze(tag, query, message, parent))

    def _frozen(self, frozen: Frozen) -> None:
        self.last_frozen = frozen
        if self.dialog is not None:
            self.dialog.accept()
            self.dialog = None
        pinned = f"; {frozen.labels_pinned} label(s) pinned from revisions" if frozen.labels_pinned else ""
        self.say(
            f"tagged {frozen.tag} -> version {frozen.digest[:12]}: {frozen.episodes} episodes, "
            f"{frozen.steps:,} steps{pinned}"
        )
        self.session.submit("versions", CurationSession.versions)

    # -- export
    def start_export(self, job: ExportJob) -> None:
        if self.export_thread is not None and self.export_thread.isRunning():
            return
        thread = ExportThread(self.opener, job)
        connect_queued(thread.progress, self.export_view.progressed)
        connect_queued(thread.exported, self._exported)
        connect_queued(thread.failed, self._export_failed)
        self.export_thread = thread
        self.export_view.started(job)
        thread.start()

    def _exported(self, result: Exported) -> None:
        self.export_view.finished(result)
        self.say(f"exported {result.job.tag} into {result.job.out}")

    def _export_failed(self, message: str) -> None:
        self.export_view.failed(message)
        self.say(message, error=True)
