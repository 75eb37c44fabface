"""The query builder: the expression in a text field, pickers that write clauses into it, and the
error of a query that does not read, shown under the field with a caret at its column.

The text is parsed on every keystroke (pure computation, no disk); a query that reads is handed
on (``query_changed``) once typing pauses, so the selection follows the text without a request
per key. A clause from the pickers is joined to the query as a tree and written back out
(:func:`~takeover.annotation.curation.query_text`), so ``a or b`` + ``and c`` becomes
``(a or b) and c``, never ``a or b and c``.
"""

from __future__ import annotations

from PyQt6.QtCore import QTimer, pyqtSignal
from PyQt6.QtGui import QFont, QFontDatabase
from PyQt6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QLineEdit, QPushButton, QVBoxLayout, QWidget

from takeover.annotation.curation import FIELDS, parse_query, query_text
from takeover.annotation.query_language import (
    OPS,
    And,
    Everything,
    Kind,
    Node,
    Op,
    Or,
    QueryError,
    value_text,
)

DEBOUNCE_MS = 250
"""A query is evaluated this long after the last keystroke."""
EXAMPLE = 'label in (success, near-success) and interventions >= 1 and operator == "ada"'
ERROR_STYLE = "QLineEdit { border: 2px solid #c62828; border-radius: 3px; padding: 2px; }"
FIELD_STYLE = "QLineEdit { border: 1px solid #9e9e9e; border-radius: 3px; padding: 3px; }"


def monospace(points: int = 0) -> QFont:
    font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
    if points:
        font.setPointSize(points)
    return font


class QueryBar(QWidget):
    """Emits ``query_changed(text, node)`` for each query that reads, after typing pauses."""

    query_changed = pyqtSignal(str, object)

    def __init__(self) -> None:
        super().__init__()
        self.specs = {f.name: f for f in FIELDS}
        self.values: dict[str, list[str]] = {}
        self.node: Node = Everything()
        """The last query that read."""
        self.reads = True
        """Whether the text in the field reads as a query."""

        self.edit = QLineEdit()
        self.edit.setFont(monospace(11))
        self.edit.setPlaceholderText(f"every episode; e.g. {EXAMPLE}")
        self.edit.setStyleSheet(FIELD_STYLE)
        self.edit.setClearButtonEnabled(True)
        self.caret = QLabel("")
        self.caret.setFont(monospace(11))
        self.caret.setStyleSheet("color: #c62828;")
        self.error = QLabel("")
        self.error.setStyleSheet("color: #c62828;")
        self.error.setWordWrap(True)

        self.field = QComboBox()
        self.field.addItems([f.name for f in FIELDS])
        self.field.setToolTip("a field (docs/curation.md says what each one is)")
        self.op = QComboBox()
        self.value = QComboBox()
        self.value.setEditable(True)
        self.value.setMinimumContentsLength(18)
        self.and_button = QPushButton("and")
        self.or_button = QPushButton("or")
        self.and_button.setToolTip("join this clause to the query with 'and'")
        self.or_button.setToolTip("join this clause to the query with 'or'")

        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("add"))
        row.addWidget(self.field)
        row.addWidget(self.op)
        row.addWidget(self.value, 1)
        row.addWidget(self.and_button)
        row.addWidget(self.or_button)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(3)
        box.addWidget(self.edit)
        box.addWidget(self.caret)
        box.addWidget(self.error)
        box.addLayout(row)
        self.caret.hide()
        self.error.hide()

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(DEBOUNCE_MS)
        self._timer.timeout.connect(self._emit)
        self.edit.textChanged.connect(self._on_text)
        self.field.currentTextChanged.connect(self._on_field)
        self.and_button.clicked.connect(lambda: self.add_clause("and"))
        self.or_button.clicked.connect(lambda: self.add_clause("or"))
        self.field.setCurrentText("label")

    # -- the text
    def text(self) -> str:
        return self.edit.text()

    def set_text(self, text: str) -> None:
        self.edit.setText(text)

    def _on_text(self, text: str) -> None:
        try:
            self.node = parse_query(text)
        except QueryError as exc:
            self.reads = False
            self._timer.stop()
            self._show_error(exc)
            return
        self.reads = True
        self._show_error(None)
        self._timer.start()

    def _emit(self) -> None:
        self.query_changed.emit(self.edit.text(), self.node)

    def flush(self) -> None:
        """Hand on the current query now (if it reads), without waiting for the pause."""
        if self._timer.isActive():
            self._timer.stop()
            self._emit()

    def _show_error(self, exc: QueryError | None, prefix: str = "") -> None:
        self.edit.setStyleSheet(FIELD_STYLE if exc is None else ERROR_STYLE)
        if exc is None:
            self.caret.hide()
            self.error.hide()
            return
        # the caret line sits under the field's text (same font; the field's left margin)
        self.caret.setText(" " * (exc.position + 1) + "^" if not prefix else "")
        self.caret.setVisible(not prefix)
        self.error.setText(f"{prefix}{exc}")
        self.error.show()

    # -- the pickers
    def set_values(self, values: dict[str, list[str]]) -> None:
        """The values each field takes in the store (offered by the value picker)."""
        self.values = values
        self._on_field(self.field.currentText())

    def _on_field(self, name: str) -> None:
        spec = self.specs.get(name)
        if spec is None:
            return
        self.op.clear()
        self.op.addItems([str(o) for o in OPS[spec.kind]])
        self.value.clear()
        if spec.kind is Kind.BOOL:
            self.value.addItems(["true", "false"])
        else:
            self.value.addItems(self.values.get(name, []))
            if spec.nullable:
                self.value.addItem("none")
        self.value.setCurrentIndex(0 if self.value.count() else -1)

    def clause(self) -> str:
        """The clause the pickers spell: ``field op value``."""
        spec = self.specs[self.field.currentText()]
        op = Op(self.op.currentText())
        raw = self.value.currentText().strip()
        is_text = spec.kind in (Kind.TEXT, Kind.SET) or (spec.kind is Kind.WORD and not spec.words)
        if is_text and raw and raw[0] not in "\"'(" and raw != "none":
            raw = value_text(raw, spec)
        if op in (Op.IN, Op.NOT_IN) and not raw.startswith("("):
            raw = f"({raw})"
        return f"{spec.name} {op} {raw}"

    def add_clause(self, joiner: str) -> None:
        """Join the pickers' clause to the query with ``joiner`` ('and' or 'or')."""
        try:
            clause = parse_query(self.clause())
        except QueryError as exc:
            self._show_error(exc, prefix=f"the clause {self.clause()!r}: ")
            return
        if not self.reads:
            return  # the query itself does not read: it says so already
        current = self.node
        if isinstance(current, Everything):
            joined = clause
        else:
            joined = And(current, clause) if joiner == "and" else Or(current, clause)
        self.edit.setText(query_text(joined))
        self.flush()
