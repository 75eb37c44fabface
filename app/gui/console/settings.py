"""The Settings dialog: the configuration file's values, edited and checked as the file is.

Every field comes from the configuration's own classes (:mod:`takeover.app.runtime.config_fields`):
its type, its default, its meaning (the tooltip), its choices. Nothing here lists values or
ranges of its own: a changed value is checked by building the configuration exactly as a file is
loaded, so a value the file would refuse is refused here with the same message, shown under the
fields with the offending one marked, and Save stays disabled until it is fixed.

What the dialog edits is a :class:`SettingsTarget`: the file it saves to (the one given with
``--config``, else the per-user file), the values set on the command line (shown, not editable:
they override the file), and how to apply the saved file (restart the console's engine), or
nothing to apply with (an engine this console did not start: its settings are shown read-only).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from takeover.app.runtime.config import AppConfig, ConfigError
from takeover.app.runtime.config_fields import (
    Setting,
    current_value,
    section_settings,
    text_value,
    value_text,
    with_settings,
)
from takeover.app.runtime.config_file import save_config


@dataclass(frozen=True)
class Group:
    """A box of fields on a page: the keys of ``[section]`` (``only`` those, or all but ``exclude``)."""

    title: str
    section: str
    only: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    def settings(self) -> list[Setting]:
        found = section_settings(self.section, self.exclude)
        return [s for s in found if s.key.rpartition(".")[2] in self.only] if self.only else found


PAGES: tuple[tuple[str, tuple[Group, ...]], ...] = (
    ("Station", (Group("Station", "station"),)),
    ("Policy", (Group("Policy server", "policy"), Group("Value alert", "console"))),
    ("Store", (Group("Dataset store", "store"),)),
    (
        "Devices",
        (
            Group("Operator", "operator"),
            Group("Gain", "loop", only=("human_gain",)),
            Group("Keyboard", "keyboard", exclude=("stale_after_s", "gripper_initially_closed")),
            Group(
                "SpaceMouse",
                "spacemouse",
                exclude=(
                    "device_index",
                    "reopen_interval_s",
                    "max_reports_per_read",
                    "gripper_initially_closed",
                ),
            ),
        ),
    ),
)
"""Which keys the dialog shows, page by page (their types and meanings come from the classes)."""


@dataclass(frozen=True)
class SettingsTarget:
    """What the dialog edits and where it goes."""

    config: AppConfig
    """The file's values (without the command line's)."""
    path: Path | None
    """Where Save writes; None: nothing to save to (the settings are shown read-only)."""
    overridden: Mapping[str, str] = field(default_factory=dict)
    """Dotted key -> the option that set it on the command line (it wins over the file)."""
    restart: Callable[[], str] | None = None
    """Restart the engine with the saved file (blocking; returns what to tell the operator).
    None: the engine is not this console's to restart."""
    note: str = ""
    """Said at the top of the dialog (whose settings these are)."""


class SettingsDialog(QDialog):
    """Edit a :class:`SettingsTarget`. After ``accept()``, :attr:`saved` is the configuration
    written and :attr:`apply` says whether the operator asked to restart the engine with it."""

    def __init__(self, target: SettingsTarget, parent: QWidget | None = None, busy: str = "") -> None:
        """``busy``: why the engine cannot be restarted now (an attempt is running), or ''."""
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.target = target
        self.saved: AppConfig | None = None
        self.apply = False
        self.editors: dict[str, QLineEdit | QComboBox | QCheckBox] = {}
        self.settings: dict[str, Setting] = {}
        self.busy = busy
        self._pages: dict[str, QScrollArea] = {}
        read_only = target.path is None

        layout = QVBoxLayout(self)
        where = f"Saved to {_shown(target.path)}" if target.path is not None else "Read-only"
        header = QLabel(f"{target.note}\n{where}" if target.note else where)
        header.setWordWrap(True)
        layout.addWidget(header)
        self.tabs = QTabWidget()
        for title, groups in PAGES:
            page = QWidget()
            box = QVBoxLayout(page)
            for group in groups:
                box.addWidget(self._group(group, read_only))
            box.addStretch(1)
            scroll = QScrollArea()  # a long page scrolls: the dialog fits a small screen
            scroll.setWidgetResizable(True)
            scroll.setWidget(page)
            self.tabs.addTab(scroll, title)
            for group in groups:
                for s in group.settings():
                    self._pages[s.key] = scroll
        layout.addWidget(self.tabs)
        self.problem = QLabel("")
        self.problem.setObjectName("settingsProblem")
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("QLabel#settingsProblem { color: #c62828; font-weight: bold; }")
        layout.addWidget(self.problem)

        buttons = QDialogButtonBox()
        self.save_button: QPushButton | None = None
        self.apply_button: QPushButton | None = None
        role = QDialogButtonBox.ButtonRole
        if read_only:
            close = QPushButton("Close")
            close.clicked.connect(self.reject)
            buttons.addButton(close, role.RejectRole)
        else:
            self.save_button = save = QPushButton("Save")
            save.clicked.connect(lambda: self._save(apply=False))
            buttons.addButton(save, role.AcceptRole)
            if target.restart is not None:
                self.apply_button = apply = QPushButton("Save and restart the engine")
                apply.clicked.connect(lambda: self._save(apply=True))
                apply.setEnabled(not busy)
                apply.setToolTip(busy)
                buttons.addButton(apply, role.ApplyRole)
            cancel = QPushButton("Cancel")
            cancel.clicked.connect(self.reject)
            buttons.addButton(cancel, role.RejectRole)
        layout.addWidget(buttons)
        self.resize(640, 560)

    # -- fields ------------------------------------------------------------------------------
    def _group(self, group: Group, read_only: bool) -> QGroupBox:
        box = QGroupBox(group.title)
        form = QFormLayout(box)
        for s in group.settings():
            editor = self._editor(s)
            tip = f"{s.key} ({s.type_text}; default {value_text(s.default, s.hint) or 'none'})"
            tip = f"{s.doc}\n{tip}" if s.doc else tip
            option = self.target.overridden.get(s.key)
            if option:
                tip += f"\nSet on the command line by {option}, which overrides the file."
            editor.setToolTip(tip)
            editor.setEnabled(not read_only and not option)
            self.editors[s.key] = editor
            self.settings[s.key] = s
            form.addRow(s.key.rpartition(".")[2].replace("_", " "), editor)
        return box

    def _editor(self, s: Setting) -> QLineEdit | QComboBox | QCheckBox:
        value = current_value(self.target.config, s.key)
        if s.choices:
            combo = QComboBox()
            combo.addItems([*s.choices, *([value] if value not in s.choices else [])])
            combo.setCurrentText(value)
            combo.currentTextChanged.connect(self.check)
            return combo
        if s.hint is bool:
            check = QCheckBox()
            check.setChecked(bool(value))
            check.toggled.connect(self.check)
            return check
        line = QLineEdit(value_text(value, s.hint))
        line.setCursorPosition(0)  # a long list shows its start
        line.setPlaceholderText("none" if s.default is None else value_text(s.default, s.hint))
        line.textChanged.connect(self.check)
        return line

    def values(self) -> dict[str, Any]:
        """Dotted key -> the value each editable field stands for (as TOML would give it)."""
        out: dict[str, Any] = {}
        for key, editor in self.editors.items():
            if not editor.isEnabled():
                continue
            if isinstance(editor, QCheckBox):
                out[key] = editor.isChecked()
            elif isinstance(editor, QComboBox):
                out[key] = editor.currentText()
            else:
                out[key] = text_value(editor.text(), self.settings[key].hint)
        return out

    # -- checking and saving -----------------------------------------------------------------
    def check(self) -> AppConfig | None:
        """Build the configuration from the fields; show the problem (and mark its field) if it
        is refused. Returns the configuration, or None."""
        try:
            config = with_settings(self.target.config, self.values())
            problem = ""
        except ConfigError as exc:
            config, problem = None, str(exc).removeprefix("settings: ")
        self._show_problem(problem)
        return config

    def _show_problem(self, problem: str) -> None:
        self.problem.setText(problem)
        marked = []
        for key, editor in self.editors.items():
            name = key.rpartition(".")[2]
            bad = bool(problem) and (problem.startswith(key) or f" {name} " in f" {problem} ")
            editor.setStyleSheet("border: 2px solid #c62828;" if bad else "")
            if bad:
                marked.append(key)
        if marked:  # show the first field at fault
            page = self._pages[marked[0]]
            self.tabs.setCurrentWidget(page)
            page.ensureWidgetVisible(self.editors[marked[0]])
        if self.save_button is not None:
            self.save_button.setEnabled(not problem)
        if self.apply_button is not None:
            self.apply_button.setEnabled(not problem and not self.busy)

    def _save(self, apply: bool) -> None:
        config = self.check()
        if config is None or self.target.path is None:
            return
        problem = _station_problem(config)
        if not problem:
            try:
                save_config(config, self.target.path)
            except ConfigError as exc:
                problem = str(exc)
        if problem:
            self._show_problem(problem)
            return
        self.saved, self.apply = config, apply
        self.accept()


def _shown(path: Path) -> str:
    """A path as a person reads it: under the home folder as ``~/...``."""
    try:
        return f"~/{path.expanduser().relative_to(Path.home())}"
    except ValueError:
        return str(path)


def _station_problem(config: AppConfig) -> str:
    """What the file cannot check by itself: a simulated station's task exists ('' if it does)."""
    if config.station.kind != "metaworld":
        return ""
    from takeover.app.station.metaworld_sim import check_task

    try:
        check_task(config.station.task)
    except (ValueError, RuntimeError) as exc:
        return str(exc)
    return ""
