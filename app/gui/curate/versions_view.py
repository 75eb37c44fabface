"""Versions: the tagged versions as a tree by lineage (each under its parent), a diff between
two, and the dialog that freezes the selection as a new one."""

from __future__ import annotations

from collections.abc import Sequence

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from takeover.annotation.curation_session import VersionInfo, created_text
from takeover.app.gui.curate.query_bar import monospace

NO_PARENT = "(none)"
TREE_COLUMNS = ("tag", "version", "episodes", "steps", "created", "description / query")


class VersionsView(QWidget):
    """Emits ``diff_requested(first tag, second tag)``."""

    diff_requested = pyqtSignal(str, str)

    def __init__(self) -> None:
        super().__init__()
        self.versions: list[VersionInfo] = []
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(list(TREE_COLUMNS))
        self.tree.setRootIsDecorated(True)
        self.tree.setAlternatingRowColors(True)
        self.tree.setUniformRowHeights(True)
        for i, width in enumerate((200, 100, 64, 64, 120)):
            self.tree.setColumnWidth(i, width)
        self.first = QComboBox()
        self.second = QComboBox()
        self.diff_button = QPushButton("Diff")
        self.diff_button.clicked.connect(self._ask_diff)
        self.diff_text = QPlainTextEdit()
        self.diff_text.setReadOnly(True)
        self.diff_text.setFont(monospace(10))
        self.diff_text.setPlaceholderText(
            "choose two versions and Diff: episodes added (+), removed (-), "
            "relabelled (~), re-derived (*), trimmed (>)"
        )

        right = QWidget()
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("from"))
        row.addWidget(self.first, 1)
        row.addWidget(QLabel("to"))
        row.addWidget(self.second, 1)
        row.addWidget(self.diff_button)
        rbox = QVBoxLayout(right)
        rbox.setContentsMargins(0, 0, 0, 0)
        rbox.addLayout(row)
        rbox.addWidget(self.diff_text)
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(self.tree)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        box = QVBoxLayout(self)
        box.setContentsMargins(4, 4, 4, 4)
        box.addWidget(split)

    def show_versions(self, versions: Sequence[VersionInfo]) -> None:
        """List ``versions`` (newest first), each under the version it was made from."""
        self.versions = list(versions)
        self.tree.clear()
        items: dict[str, QTreeWidgetItem] = {}
        for v in reversed(self.versions):  # oldest first: a parent is placed before its children
            item = QTreeWidgetItem(
                [
                    v.tag,
                    v.digest[:12],
                    str(v.episodes),
                    f"{v.steps:,}",
                    created_text(v.created_at),
                    " · ".join(t for t in (v.message, f"query: {v.query}" if v.query else "") if t),
                ]
            )
            for col in (2, 3):
                item.setTextAlignment(col, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            parent_tags = ", ".join(v.parent_tags) or (v.parent[:12] if v.parent else "none")
            item.setToolTip(0, f"version {v.digest}\nmade from {parent_tags}")
            parent = items.get(v.parent) if v.parent else None
            if parent is not None:
                parent.insertChild(0, item)  # the newest child first
            else:
                self.tree.insertTopLevelItem(0, item)
            items.setdefault(v.digest, item)
        self.tree.expandAll()
        tags = [v.tag for v in self.versions]
        for combo, default in ((self.first, 1), (self.second, 0)):
            keep = combo.currentText()
            combo.clear()
            combo.addItems(tags)
            if keep in tags:
                combo.setCurrentText(keep)
            elif tags:
                combo.setCurrentIndex(min(default, len(tags) - 1))

    def _ask_diff(self) -> None:
        if self.first.currentText() and self.second.currentText():
            self.diff_text.setPlainText("…")
            self.diff_requested.emit(self.first.currentText(), self.second.currentText())

    def show_diff(self, lines: Sequence[str]) -> None:
        self.diff_text.setPlainText("\n".join(lines))


class FreezeDialog(QDialog):
    """Tag and description for freezing the selection. Emits ``submitted(tag, description,
    parent)``; stays open until the window says it is frozen (:meth:`accept`) or shows why not
    (:meth:`refused`: one line, e.g. a tag in use)."""

    submitted = pyqtSignal(str, str, str)

    def __init__(self, parent: QWidget, query: str, episodes: int, tags: Sequence[str]) -> None:
        super().__init__(parent)
        self.setWindowTitle("Freeze the selection as a version")
        self.setMinimumWidth(560)
        self.tag = QLineEdit()
        self.tag.setPlaceholderText("a new tag, e.g. grasp-v3 (tags are never moved or reused)")
        self.description = QLineEdit()
        self.description.setPlaceholderText("what this version is for")
        self.parent_tag = QComboBox()
        self.parent_tag.addItems([NO_PARENT, *tags])
        self.parent_tag.setToolTip("the version this one is made from (its lineage)")
        query_label = QLabel(query.strip() or "all")
        query_label.setFont(monospace(10))
        query_label.setWordWrap(True)
        form = QFormLayout()
        form.addRow("query", query_label)
        form.addRow("matches", QLabel(f"{episodes} episode(s) now; what matches when frozen is taken"))
        form.addRow("tag", self.tag)
        form.addRow("description", self.description)
        form.addRow("made from", self.parent_tag)
        self.error = QLabel("")
        self.error.setStyleSheet("color: #c62828;")
        self.error.setWordWrap(True)
        self.error.hide()
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        if ok is not None:
            ok.setText("Freeze")
        self.buttons.accepted.connect(self._submit)
        self.buttons.rejected.connect(self.reject)
        box = QVBoxLayout(self)
        box.addLayout(form)
        box.addWidget(self.error)
        box.addWidget(self.buttons)

    def _submit(self) -> None:
        tag = self.tag.text().strip()
        if not tag:
            self.refused("name the version: a tag is needed")
            return
        self.error.hide()
        self.buttons.setEnabled(False)
        parent = self.parent_tag.currentText()
        self.submitted.emit(tag, self.description.text().strip(), "" if parent == NO_PARENT else parent)

    def refused(self, message: str) -> None:
        self.error.setText(message)
        self.error.show()
        self.buttons.setEnabled(True)
        self.tag.setFocus()
        self.tag.selectAll()
