"""Export: a tagged version into a new folder, in a format training code reads as it is, with a
progress bar of the episodes written (the work runs on an :class:`ExportThread`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PyQt6.QtCore import pyqtSignal
from PyQt6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from takeover.app.gui.curate.workers import EXPORT_FORMATS, Exported, ExportJob

FORMAT_NOTES = {
    "lerobot": "LeRobot v3.0 dataset (meta/, data/ parquet, videos/ mp4)",
    "robomimic": "robomimic HDF5 (demo.hdf5 with mask/ filter keys)",
    "zarr": "diffusion_policy replay buffer (replay_buffer.zarr, zarr format 2)",
}


class ExportView(QWidget):
    """Emits ``export_requested(ExportJob)``; shows the progress and the outcome it is told."""

    export_requested = pyqtSignal(object)

    def __init__(self, base: Path) -> None:
        super().__init__()
        self.base = base
        """The folder a new export goes into unless the path is edited."""
        self._edited = False
        self.version = QComboBox()
        self.version.setMinimumContentsLength(14)
        self.fmt = QComboBox()
        self.fmt.addItems(list(EXPORT_FORMATS))
        self.note = QLabel(FORMAT_NOTES[self.fmt.currentText()])
        self.note.setStyleSheet("color: #546e7a;")
        self.out = QLineEdit()
        self.out.setToolTip("the folder to make (it must not exist; it appears only when complete)")
        self.browse = QPushButton("Choose…")
        self.start = QPushButton("Export")
        self.bar = QProgressBar()
        self.bar.setFormat("%v of %m episodes")
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.status = QLabel("")
        self.status.setWordWrap(True)

        grid = QGridLayout()
        grid.addWidget(QLabel("version"), 0, 0)
        grid.addWidget(self.version, 0, 1)
        grid.addWidget(QLabel("format"), 0, 2)
        grid.addWidget(self.fmt, 0, 3)
        grid.addWidget(self.note, 0, 4, 1, 2)
        grid.addWidget(QLabel("folder"), 1, 0)
        path_row = QHBoxLayout()
        path_row.addWidget(self.out, 1)
        path_row.addWidget(self.browse)
        grid.addLayout(path_row, 1, 1, 1, 5)
        grid.setColumnStretch(5, 1)
        run_row = QHBoxLayout()
        run_row.addWidget(self.start)
        run_row.addWidget(self.bar, 1)
        box = QVBoxLayout(self)
        box.setContentsMargins(4, 4, 4, 4)
        box.addLayout(grid)
        box.addLayout(run_row)
        box.addWidget(self.status)
        box.addStretch(1)

        self.version.currentTextChanged.connect(self._default_out)
        self.fmt.currentTextChanged.connect(self._on_format)
        self.out.textEdited.connect(self._mark_edited)
        self.browse.clicked.connect(self._choose)
        self.start.clicked.connect(self._ask)

    def set_tags(self, tags: Sequence[str], select: str = "") -> None:
        keep = select or self.version.currentText()
        self.version.clear()
        self.version.addItems(list(tags))
        if keep in tags:
            self.version.setCurrentText(keep)
        self.start.setEnabled(bool(tags) and not self.running)

    @property
    def running(self) -> bool:
        return not self.fmt.isEnabled()

    def _mark_edited(self, _: str) -> None:
        self._edited = True

    def _on_format(self, fmt: str) -> None:
        self.note.setText(FORMAT_NOTES.get(fmt, ""))
        self._default_out()

    def _default_out(self, *_: object) -> None:
        if not self._edited and self.version.currentText():
            self.out.setText(str(self.base / f"{self.version.currentText()}-{self.fmt.currentText()}"))

    def _choose(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder to export into", str(self.base))
        if folder:
            self.base = Path(folder)
            self._edited = False
            self._default_out()

    def _ask(self) -> None:
        tag, out = self.version.currentText(), self.out.text().strip()
        if not tag or not out:
            self.failed("choose a version and the folder to make")
            return
        self.export_requested.emit(ExportJob(tag, self.fmt.currentText(), Path(out).expanduser()))

    def started(self, job: ExportJob) -> None:
        for w in (self.start, self.version, self.fmt, self.out, self.browse):
            w.setEnabled(False)
        self.bar.setRange(0, 0)  # busy until the writer says how many episodes
        self.status.setStyleSheet("")
        self.status.setText(f"exporting {job.tag} as {job.fmt} into {job.out} …")

    def progressed(self, done: int, total: int) -> None:
        if total:
            self.bar.setRange(0, total)
            self.bar.setValue(done)

    def _idle(self) -> None:
        for w in (self.start, self.version, self.fmt, self.out, self.browse):
            w.setEnabled(True)

    def finished(self, result: Exported) -> None:
        self._idle()
        self.bar.setRange(0, max(1, result.episodes))
        self.bar.setValue(result.episodes)
        self.status.setStyleSheet("color: #2e7d32;")
        notes = f" ({len(result.notes)} note(s): {result.notes[0]} …)" if result.notes else ""
        self.status.setText(
            f"exported {result.job.tag} as {result.job.fmt}: {result.episodes} episodes, "
            f"{result.steps:,} steps in {result.job.out}{notes}"
        )
        self._edited = False
        self._default_out()

    def failed(self, message: str) -> None:
        self._idle()
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.status.setStyleSheet("color: #c62828;")
        self.status.setText(message)
