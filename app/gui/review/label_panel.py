"""The labelling panel: one button (and key) per outcome, the quality and category pickers, progress,
tags, notes, and whether to move on to the next episode after a label.

The panel only builds the :class:`Label` that a key or button asks for (:meth:`LabelPanel.label`)
and shows the episode's labels; the window hands the label to the writer thread.
"""

from __future__ import annotations

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QFont
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
)

from takeover.annotation.labels import SUCCESS_QUALITIES, Vocabulary, label_text, shown
from takeover.annotation.review_model import ReviewRow
from takeover.app.gui.review.fields import NumberField, TextField
from takeover.app.gui.review.keys import OUTCOME_KEYS, key_of
from takeover.storage.label_revisions import Label, LabelRevision

NONE_TEXT = "—"
OUTCOME_STYLE = {
    "success": "#c8e6c9",
    "near_success": "#fff59d",
    "failure": "#ffcdd2",
}
MAX_NOTE_CHARS = 2000


def label_line(label: Label | None) -> str:
    """'failure: collision, progress 40 %' ('—' for none)."""
    return NONE_TEXT if label is None else label_text(label)


def _who(revision: LabelRevision) -> str:
    """'ada (operator)', 'lee (lead)', 'cy'."""
    return revision.annotator if revision.role == "annotator" else f"{revision.annotator} ({revision.role})"


class LabelPanel(QGroupBox):
    """Outcome buttons and label fields; ``outcome_chosen(outcome)`` when a button is clicked."""

    outcome_chosen = pyqtSignal(str)

    def __init__(self, vocabulary: Vocabulary, annotator: str, role: str) -> None:
        super().__init__(f"Label as {annotator}" + (" (lead)" if role == "lead" else ""))
        self.vocabulary = vocabulary
        self.counts = QLabel(NONE_TEXT)
        self.counts.setObjectName("countsValue")
        self.counts.setWordWrap(True)
        self.mine = QLabel(NONE_TEXT)
        self.mine.setObjectName("mineValue")
        self.others = QLabel(NONE_TEXT)
        self.others.setWordWrap(True)
        self.buttons: dict[str, QPushButton] = {}
        row = QHBoxLayout()
        for outcome, key in OUTCOME_KEYS.items():
            button = QPushButton(f"{key}   {shown(outcome).capitalize()}")
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
            button.setFixedHeight(34)
            button.setStyleSheet(f"QPushButton:enabled {{ background: {OUTCOME_STYLE[outcome]}; }}")
            button.clicked.connect(lambda _checked=False, o=outcome: self.outcome_chosen.emit(o))
            self.buttons[outcome] = button
            row.addWidget(button)
        bold = QFont(self.font())
        bold.setBold(True)
        for button in self.buttons.values():
            button.setFont(bold)
        self.quality = self._combo([NONE_TEXT, *(shown(q) for q in SUCCESS_QUALITIES)])
        self.category = self._combo([NONE_TEXT, *vocabulary.failure_categories])
        self.progress = NumberField()
        self.progress.setRange(-1, 100)
        self.progress.setSpecialValueText(NONE_TEXT)
        self.progress.setSuffix(" %")
        self.progress.setValue(-1)
        self.tags = TextField()
        self.tags.setPlaceholderText("words, separated by spaces")
        self.notes = TextField()
        self.notes.setMaxLength(MAX_NOTE_CHARS)
        self.notes.setPlaceholderText(f"{key_of('notes').shown}: what a reader should know")
        self.advance = QCheckBox("after a label, go to the next episode")
        self.advance.setChecked(True)
        self.advance.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.status = QLabel("")
        self.status.setObjectName("labelStatus")
        self.status.setWordWrap(True)

        form = QFormLayout()
        form.setVerticalSpacing(3)
        form.addRow("counts", self.counts)
        form.addRow("mine", self.mine)
        form.addRow("others", self.others)
        fields = QFormLayout()
        fields.setVerticalSpacing(3)
        fields.addRow(f"quality ({key_of('quality').shown})", self.quality)
        fields.addRow(f"category ({key_of('category').shown})", self.category)
        fields.addRow("progress", self.progress)
        fields.addRow("tags", self.tags)
        fields.addRow(f"notes ({key_of('notes').shown})", self.notes)
        box = QVBoxLayout(self)
        box.setSpacing(4)
        box.addLayout(form)
        box.addLayout(row)
        box.addLayout(fields)
        box.addWidget(self.advance)
        box.addWidget(self.status)
        self.set_row(None)

    @staticmethod
    def _combo(items: list[str]) -> QComboBox:
        combo = QComboBox()
        combo.addItems(items)
        combo.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        return combo

    def set_row(self, row: ReviewRow | None) -> None:
        """Show the episode's labels and fill the fields from the annotator's own newest revision
        (empty if they have none): a new label edits what they said before."""
        for button in self.buttons.values():
            button.setEnabled(row is not None)
        if row is None:
            self.counts.setText(NONE_TEXT)
            self.mine.setText(NONE_TEXT)
            self.others.setText(NONE_TEXT)
            self._fill(None)
            return
        self.show_labels(row)
        self._fill(row.mine)

    def show_labels(self, row: ReviewRow) -> None:
        """The label that counts, the annotator's own and the others', without touching the fields."""
        res = row.resolution
        self.counts.setText(f"{label_line(res.label)}  ({row.source})" if res is not None else NONE_TEXT)
        self.mine.setText(label_line(row.mine))
        others = [h for h in row.heads if row.mine is None or h.id != row.mine.id]
        self.others.setText(", ".join(_who(h) + f": {shown(h.outcome)}" for h in others) or NONE_TEXT)

    def _fill(self, mine: LabelRevision | None) -> None:
        self.quality.setCurrentIndex(
            1 + SUCCESS_QUALITIES.index(mine.quality) if mine is not None and mine.quality else 0
        )
        cats = self.vocabulary.failure_categories
        cat = mine.failure_category if mine is not None else None
        self.category.setCurrentIndex(1 + cats.index(cat) if cat in cats else 0)
        self.progress.setValue(mine.progress if mine is not None and mine.progress is not None else -1)
        self.tags.setText(" ".join(mine.tags) if mine is not None else "")
        self.notes.setText(mine.notes if mine is not None else "")

    def cycle(self, combo: QComboBox) -> None:
        combo.setCurrentIndex((combo.currentIndex() + 1) % combo.count())

    def label(self, outcome: str) -> Label:
        """The label the fields say with ``outcome``: a quality only for a success, a category
        only for a failure (a picker that does not apply is left out)."""
        quality = (
            SUCCESS_QUALITIES[self.quality.currentIndex() - 1] if self.quality.currentIndex() > 0 else None
        )
        category = (
            self.vocabulary.failure_categories[self.category.currentIndex() - 1]
            if self.category.currentIndex() > 0
            else None
        )
        progress = self.progress.value()
        return Label(
            outcome=outcome,
            quality=quality if outcome == "success" else None,
            failure_category=category if outcome == "failure" else None,
            progress=None if progress < 0 else progress,
            notes=self.notes.text().strip(),
            tags=tuple(dict.fromkeys(self.tags.text().replace(",", " ").split())),
        )
