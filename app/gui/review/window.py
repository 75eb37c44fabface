"""The review screen: an annotator's whole day in one window.

Left: the episode list with its filters, and the labelling panel. Right: the episode under the
cursor: every camera at the cursor's step, the timeline (who drove, events, the label that counts),
the transport (step, time, play at 0.5×/1×/2×), and the plots or the hand-over boundaries.

It is a view: the store is read by :class:`StoreThread`, labels are written by
:class:`LabelWriter`, frames decoded by :class:`FrameThread` (app/gui/review/workers.py); the
window only asks and shows what comes back. A label is given with one key (1, 2, 3) and the
window moves on to the next episode (unless told not to), so a batch is labelled with keys alone,
while the next episode loads. Closing the window waits until every label given is written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from PyQt6.QtCore import QItemSelection, Qt
from PyQt6.QtGui import QCloseEvent, QFont, QKeySequence, QShortcut, QShowEvent
from PyQt6.QtWidgets import (
    QApplication,
    QLabel,
    QMainWindow,
    QSizePolicy,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from takeover.annotation.labels import Rule, Vocabulary, label_text, shown
from takeover.annotation.params import SmoothingParams
from takeover.annotation.review_boundaries import HandOvers
from takeover.annotation.review_episode import ReviewEpisode
from takeover.annotation.review_frames import DEFAULT_CACHE_BYTES
from takeover.annotation.review_model import COLUMN_NAMES, ReviewFilter, ReviewList, ReviewRow
from takeover.app.gui.review.boundaries_view import BoundariesView
from takeover.app.gui.review.cameras import CameraRow
from takeover.app.gui.review.episode_list import EpisodeList
from takeover.app.gui.review.keys import KEYS, key_of
from takeover.app.gui.review.label_panel import LabelPanel
from takeover.app.gui.review.plots import Plots
from takeover.app.gui.review.timeline import Timeline
from takeover.app.gui.review.transport import Transport
from takeover.app.gui.review.workers import (
    BoundaryJob,
    FramesAt,
    FrameThread,
    LabelWriter,
    ListSource,
    StoreThread,
)
from takeover.storage.boundary_edits import BoundaryEdit
from takeover.storage.errors import InvalidLabelError
from takeover.storage.label_revisions import LabelRevision
from takeover.storage.store import Store

WINDOW_SIZE = (1600, 980)
LEFT_WIDTH = 600


@dataclass(frozen=True)
class ReviewOptions:
    """What the screen reviews and who labels."""

    open_store: Callable[[], Store]
    """Opens the store (on the store thread: a failure is shown in the window)."""
    annotator: str
    role: str = "annotator"
    """'annotator', or 'lead' for a data lead settling disagreements."""
    vocabulary: Vocabulary = field(default_factory=Vocabulary)
    rule: Rule = Rule.LEAD
    tag: str | None = None
    filter: ReviewFilter = field(default_factory=ReviewFilter)
    """The filters the list starts with."""
    sort: str = "date"
    smoothing: SmoothingParams | None = None
    """Parameters of the smoothing shown beside the raw hand-overs (default parameters if None)."""
    cache_bytes: int = DEFAULT_CACHE_BYTES
    title: str = "Takeover review"


class ReviewWindow(QMainWindow):
    """The review window; call :meth:`start` after constructing it."""

    def __init__(self, options: ReviewOptions) -> None:
        super().__init__()
        self.options = options
        self.listing: ReviewList | None = None
        self.store: Store | None = None
        self.current: str | None = None
        """The episode selected (it may still be loading)."""
        self.episode: ReviewEpisode | None = None
        """The episode shown (loaded)."""
        self.at_step = 0
        self.direction = 1
        self._closed = False
        self._first_list = True
        self._shown = False
        self.setWindowTitle(options.title)
        self.resize(*WINDOW_SIZE)

        self.store_thread = StoreThread(
            options.open_store, ListSource(options.annotator, options.rule, options.tag), options.smoothing
        )
        self.frames = FrameThread(options.cache_bytes)
        self.writer: LabelWriter | None = None

        self.list_panel = EpisodeList()
        self.label_panel = LabelPanel(options.vocabulary, options.annotator, options.role)
        self.header = QLabel("opening the store…")
        self.header.setObjectName("episodeHeader")
        self.header.setTextFormat(Qt.TextFormat.RichText)
        # A long task text is cut at the window's edge, never widening the window.
        self.header.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.problem = QLabel("")
        self.problem.setObjectName("problemBanner")
        self.problem.setWordWrap(True)
        self.problem.hide()
        self.alert = QLabel("")
        self.alert.setObjectName("problemBanner")
        self.alert.setWordWrap(True)
        self.alert.hide()
        self.cameras = CameraRow()
        self.timeline = Timeline()
        self.plots = Plots()
        self.boundaries = BoundariesView()
        self.tabs = QTabWidget()
        self.tabs.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.tabs.addTab(self.plots, "Plots")
        self.tabs.addTab(self.boundaries, f"Boundaries ({key_of('boundaries').shown})")
        self.transport = Transport()
        self.message = QLabel("")
        self.keys_strip = QLabel(keys_strip_text())
        self.keys_strip.setObjectName("keysStrip")
        self.keys_strip.setWordWrap(True)
        self.setCentralWidget(self._build_layout())
        self.statusBar().addWidget(self.message, 1)  # type: ignore[union-attr]
        self._apply_style()
        self._install_keys()
        self._connect()

    # ------------------------------------------------------------------ layout
    def _build_layout(self) -> QWidget:
        left = QWidget()
        left_box = QVBoxLayout(left)
        left_box.setContentsMargins(6, 6, 6, 6)
        left_box.addWidget(self.alert)
        left_box.addWidget(self.list_panel, 1)
        left_box.addWidget(self.label_panel)
        left.setMinimumWidth(440)

        right = QWidget()
        right_box = QVBoxLayout(right)
        right_box.setContentsMargins(6, 6, 6, 6)
        right_box.setSpacing(4)
        right_box.addWidget(self.header)
        right_box.addWidget(self.problem)
        right_box.addWidget(self.cameras, 5)
        right_box.addWidget(self.timeline)
        right_box.addWidget(self.transport)
        right_box.addWidget(self.tabs, 4)
        # The cameras and the tabs share the height 5:4 whichever tab shows.
        self.tabs.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)
        self.cameras.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)

        split = self.split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        split.setSizes([LEFT_WIDTH, WINDOW_SIZE[0] - LEFT_WIDTH])
        split.setChildrenCollapsible(False)
        root = QWidget()
        box = QVBoxLayout(root)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(0)
        box.addWidget(split, 1)
        box.addWidget(self.keys_strip)
        return root

    def _apply_style(self) -> None:
        base = QFont(self.font())
        base.setPointSize(10)
        self.setFont(base)
        big = QFont(base)
        big.setPointSize(12)
        self.header.setFont(big)
        bold = QFont(base)
        bold.setBold(True)
        for label in (self.transport.time_value, self.label_panel.counts):
            label.setFont(bold)
        self.setStyleSheet(
            "QLabel#problemBanner { background: #ffebee; color: #b71c1c; padding: 4px 8px;"
            " border: 1px solid #ef9a9a; border-radius: 4px; }"
            "QLabel#keysStrip { background: #263238; color: #eceff1; padding: 4px 10px; }"
            "QLabel#labelStatus { color: #455a64; }"
            "QLabel#listCount { color: #616161; }"
            "QLabel#boundaryNote { color: #757575; }"
        )

    def _install_keys(self) -> None:
        panel, transport = self.label_panel, self.transport
        handlers: dict[str, Callable[[], None]] = {
            "success": lambda: self.give_label("success"),
            "near_success": lambda: self.give_label("near_success"),
            "failure": lambda: self.give_label("failure"),
            "quality": lambda: panel.cycle(panel.quality),
            "category": lambda: panel.cycle(panel.category),
            "notes": lambda: panel.notes.setFocus(Qt.FocusReason.ShortcutFocusReason),
            "next": lambda: self.move_episode(1),
            "previous": lambda: self.move_episode(-1),
            "step_forward": lambda: transport.step_by(1),
            "step_back": lambda: transport.step_by(-1),
            "second_forward": lambda: transport.step_by(transport.second()),
            "second_back": lambda: transport.step_by(-transport.second()),
            "first": transport.first,
            "last": transport.last,
            "play": transport.toggle_play,
            "faster": transport.faster,
            "slower": transport.slower,
            "goto": transport.goto,
            "boundaries": lambda: self.tabs.setCurrentIndex(1 - self.tabs.currentIndex()),
            "reload": self.store_thread.request_list,
        }
        self.shortcuts: list[QShortcut] = []
        for key in KEYS:
            for sequence in key.keys:
                shortcut = QShortcut(QKeySequence(sequence), self)
                shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
                shortcut.activated.connect(handlers[key.action])
                self.shortcuts.append(shortcut)

    def _connect(self) -> None:
        t = self.store_thread
        t.opened.connect(self._on_opened)
        t.open_failed.connect(self._on_open_failed)
        t.listed.connect(self._on_listed)
        t.list_failed.connect(lambda text: self.show_alert(f"the list could not be read: {text}"))
        t.episode_loaded.connect(self._on_episode)
        t.episode_failed.connect(self._on_episode_failed)
        t.hand_overs.connect(self._on_hand_overs)
        self.frames.ready.connect(self._on_frames)
        self.frames.failed.connect(lambda _r, text: self.show_problem(text))
        selection = self.list_panel.table.selectionModel()
        assert selection is not None
        selection.selectionChanged.connect(self._on_selection)
        self.list_panel.model.modelReset.connect(self._after_refilter)
        self.label_panel.outcome_chosen.connect(self.give_label)
        self.timeline.seek.connect(self.seek)
        self.plots.seek.connect(self.seek)
        self.boundaries.seek.connect(self.seek)
        self.boundaries.edited.connect(self._edit_boundary)
        self.transport.seek.connect(self.seek)

    def showEvent(self, event: QShowEvent | None) -> None:
        super().showEvent(event)
        if not self._shown:  # the list's width, now that the window has its own
            self._shown = True
            self.split.setSizes([LEFT_WIDTH, max(1, self.width() - LEFT_WIDTH)])

    def start(self) -> None:
        """Open the store and start reading (on the worker threads)."""
        self.frames.start()
        self.store_thread.start()

    # ------------------------------------------------------------------ store and list
    def _on_opened(self, store: Store) -> None:
        if self._closed:  # arrived after the window closed: the store thread closes the store
            return
        self.store = store
        self.writer = LabelWriter(store, self.options.annotator, self.options.role, self.options.vocabulary)
        self.writer.saved.connect(self._on_saved)
        self.writer.boundary_saved.connect(self._on_boundary_saved)
        self.writer.boundary_failed.connect(
            lambda episode_id, text: self.show_problem(f"the boundary edit was not saved: {text}")
        )
        self.writer.failed.connect(self._on_label_failed)
        self.writer.start()
        if store.read_only:
            self.show_alert("this store can only be read: labels cannot be saved here")
        self.show_message(f"store: {store.where}")

    def _on_open_failed(self, text: str) -> None:
        self.header.setText("no store")
        self.show_alert(f"the store could not be opened: {text}")

    def _on_listed(self, listing: ReviewList) -> None:
        keep = self.current
        self.listing = listing
        self.list_panel.set_listing(listing)
        if self._first_list:
            self._first_list = False
            self.list_panel.filters.set_filter(self.options.filter)
            column = COLUMN_NAMES.index(self.options.sort)
            self.list_panel.table.sortByColumn(column, Qt.SortOrder.AscendingOrder)
            self.list_panel.apply_filter()
        if not listing.rows:
            self.header.setText("the store holds no episodes" if self.options.tag is None else "no episodes")
        at = self.list_panel.model.position(keep) if keep is not None else None
        self.list_panel.select(at if at is not None else 0)

    def _after_refilter(self) -> None:
        """After the filters or the sort changed: keep the episode selected if it is still listed."""
        if self.current is None:
            return
        at = self.list_panel.model.position(self.current)
        if at is not None:
            self.list_panel.select(at)
        elif self.list_panel.model.rows:
            self.list_panel.select(0)

    def _on_selection(self, selected: QItemSelection, _deselected: QItemSelection) -> None:
        episode_id = self.list_panel.selected()
        if episode_id is not None and episode_id != self.current:
            self.open_episode(episode_id)

    def move_episode(self, by: int) -> None:
        """Select the episode ``by`` rows down the list (up if negative)."""
        at = self.list_panel.model.position(self.current) if self.current is not None else None
        self.list_panel.select(0 if at is None else at + by)

    # ------------------------------------------------------------------ one episode
    def row(self) -> ReviewRow | None:
        if self.listing is None or self.current is None:
            return None
        return self.listing.rows.get(self.current)

    def open_episode(self, episode_id: str) -> None:
        """Show ``episode_id``: its labels at once, its data when read."""
        self.transport.stop_play()
        self.current = episode_id
        self.hide_problem()
        row = self.row()
        self.label_panel.set_row(row)
        if row is not None:
            self._show_header(row, loading=True)
            self._show_timeline_label(row)
        self.boundaries.set_hand_overs(None)
        self.store_thread.request_episode(episode_id)

    def _show_header(self, row: ReviewRow, loading: bool = False) -> None:
        """Two lines: the episode and its task; who, where, with which policy, when, how long."""
        r = row.record
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.started_at))
        takeovers = f"{r.num_takeovers} takeover{'s' if r.num_takeovers != 1 else ''}"
        details = [
            f"{_html(r.operator)} at {_html(r.station)}",
            f"policy {_html(r.policy_id)}",
            when,
            f"{r.num_steps} steps at {r.rate_hz:g} Hz",
            takeovers,
        ]
        reading = "  <i>(reading…)</i>" if loading else ""
        self.header.setText(
            f"<b>{_html(r.episode_id)}</b>&nbsp;&nbsp;{_html(r.task)}{reading}<br>"
            f"<span style='font-size:small; color:#546e7a'>{'  ·  '.join(details)}</span>"
        )

    def _show_timeline_label(self, row: ReviewRow) -> None:
        res = row.resolution
        if res is None:
            self.timeline.set_label("", "no label")
            return
        agree = f", agreement {res.agreement:.2f}" if res.annotators > 1 else ""
        flag = "  DISAGREEMENT" if row.disagrees else ""
        self.timeline.set_label(res.outcome, f"{label_text(res.label)}  ({row.source}{agree}){flag}")

    def _on_episode(self, episode: ReviewEpisode) -> None:
        if episode.episode_id != self.current:
            return
        self.episode = episode
        row = self.row()
        if row is not None:
            self._show_header(row)
        self.cameras.set_cameras(list(episode.cameras))
        self.timeline.set_episode(episode)
        self.plots.set_episode(episode)
        self.transport.set_episode(episode)
        self.at_step = -1
        self.seek(0)

    def _on_episode_failed(self, episode_id: str, text: str) -> None:
        if episode_id != self.current:
            return
        self.episode = None
        self.cameras.set_cameras([])
        self.timeline.set_episode(None)
        self.plots.set_episode(None)
        self.transport.set_episode(None)
        self.show_problem(f"episode {episode_id}: {text}")
        row = self.row()
        if row is not None:
            self._show_header(row)

    def _edit_boundary(self, kind: str, recorded_step: int, step: int, window: int | None) -> None:
        if self.writer is None or not self.current:
            self.show_message("no store open: the edit cannot be saved")
            return
        self.writer.submit_boundary(BoundaryJob(self.current, kind, recorded_step, step, window))
        self.show_message(f"saving the edit of the {kind} recorded at step {recorded_step}…")
        self.setFocus()

    def _on_boundary_saved(self, edit: BoundaryEdit) -> None:
        self.show_message(
            f"saved boundary edit {edit.id}: the {edit.kind} recorded at {edit.recorded_step} of "
            f"{edit.episode_id} counts from {edit.step}"
            + (
                f", pre-intervention window from {edit.pre_window_start}"
                if edit.pre_window_start is not None
                else ""
            )
        )
        if edit.episode_id == self.current:
            self.store_thread.request_hand_overs(edit.episode_id)

    def _on_hand_overs(self, hand_overs: HandOvers) -> None:
        if hand_overs.episode_id == self.current:
            ep = self.episode
            steps = (
                ep.episode.num_steps if ep is not None and ep.episode_id == hand_overs.episode_id else None
            )
            self.boundaries.set_hand_overs(hand_overs, steps)

    # ------------------------------------------------------------------ the cursor
    def seek(self, step: int) -> None:
        """Put the cursor on ``step`` (clamped): the timeline, the plots and the step box follow at
        once; the cameras when their frames are decoded."""
        ep = self.episode
        if ep is None:
            return
        step = ep.clamp(step)
        if step == self.at_step:
            return
        self.direction = 1 if step >= self.at_step else -1
        self.at_step = step
        self.timeline.set_cursor(step)
        self.plots.set_cursor(step)
        self.transport.show_step(step)
        self.frames.request(ep, step, self.direction)

    def _on_frames(self, frames: FramesAt) -> None:
        ep = self.episode
        if ep is None or frames.episode_id != ep.episode_id:
            return
        for camera, shown_frame in frames.shown.items():
            view = self.cameras.views.get(camera)
            if view is None:
                continue
            index = shown_frame.index
            frame_step = int(ep.cameras[camera].steps[index]) if index is not None else None
            try:
                view.show_frame(frames.step, shown_frame, frame_step)
            except ValueError as exc:
                self.show_problem(f"camera {camera}: {exc}")

    # ------------------------------------------------------------------ labelling
    def give_label(self, outcome: str) -> None:
        """Label the episode selected with ``outcome`` and the panel's fields; move on if asked."""
        episode_id = self.current
        if episode_id is None:
            self.show_message("no episode selected")
            return
        if self.writer is None:
            self.show_alert("labels cannot be saved: the store is not open")
            return
        label = self.label_panel.label(outcome)
        try:
            self.options.vocabulary.check(label)
        except InvalidLabelError as exc:
            self.label_panel.status.setText(f"not saved: {exc}")
            return
        self.writer.submit(episode_id, label)
        self.label_panel.status.setText(f"saving {shown(outcome)} for {episode_id}…")
        if self.label_panel.advance.isChecked():
            self.move_episode(1)

    def _on_saved(self, revision: LabelRevision, heads: list[LabelRevision]) -> None:
        if self.listing is None or revision.episode_id not in self.listing.rows:
            return
        row = self.listing.update(revision.episode_id, heads)
        self.list_panel.model.update_row(row)
        if revision.episode_id == self.current:
            self.label_panel.show_labels(row)
            self._show_timeline_label(row)
        self.label_panel.status.setText(
            f"saved revision {revision.id}: {revision.episode_id} {label_text(revision)}"
        )
        if self.alert.text().startswith("the label of"):
            self.alert.hide()

    def _on_label_failed(self, episode_id: str, text: str) -> None:
        self.label_panel.status.setText(f"NOT saved for {episode_id}")
        self.show_alert(f"the label of {episode_id} was not saved: {text}")

    # ------------------------------------------------------------------ messages
    def show_problem(self, text: str) -> None:
        """Say what is wrong with the episode shown, in the red bar over the cameras (it goes when
        another episode is shown)."""
        self.problem.setText(text)
        self.problem.setToolTip(text)
        self.problem.show()

    def hide_problem(self) -> None:
        self.problem.hide()
        self.problem.setText("")

    def show_alert(self, text: str) -> None:
        """Say what is wrong beyond one episode (the store, a label not saved), in the red bar
        over the list; it stays until a label is saved."""
        self.alert.setText(text)
        self.alert.setToolTip(text)
        self.alert.show()

    def show_message(self, text: str) -> None:
        self.message.setText(text)

    # ------------------------------------------------------------------ close
    def closeEvent(self, event: QCloseEvent | None) -> None:
        if not self._closed:
            self._closed = True
            self.transport.stop_play()
            if self.writer is not None:
                if self.writer.waiting:
                    self.show_message(f"saving {self.writer.waiting} label(s)…")
                    QApplication.processEvents()
                self.writer.finish()
                self.writer.wait()
            self.frames.stop()
            self.store_thread.stop()
            self.frames.wait()
            self.store_thread.wait()
        super().closeEvent(event)


def keys_strip_text() -> str:
    """The keys in one line for the strip at the bottom of the window."""
    groups = (
        ("1 / 2 / 3", "success / near-success / failure"),
        ("J / K", "next / previous"),
        ("← / →", "step"),
        ("Shift+← / →", "1 s"),
        ("Home / End", "ends"),
        ("Space", "play"),
        ("[ / ]", "speed"),
        (key_of("goto").shown, "go to step"),
        (f"{key_of('quality').shown} / {key_of('category').shown}", "quality / category"),
        (key_of("notes").shown, "notes"),
        (key_of("boundaries").shown, "boundaries"),
        (key_of("reload").shown, "reload"),
    )
    return "     ".join(f"{keys}  {what}" for keys, what in groups)


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
