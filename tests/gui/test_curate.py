"""The real curation screen driven with pytest-qt against a real store: type a query and see the
count, table and statistics; pickers that write clauses; an error shown inline; freeze a
version (checked from another connection) and be told when its tag is taken; the versions by
lineage and a diff; an export with its progress, read back with h5py."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import h5py
import pytest
from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import QApplication, QDialogButtonBox

from takeover.annotation.curation import freeze, select_episodes
from takeover.annotation.labels import relabel, relabel_many
from takeover.app.gui.curate.window import CurateWindow
from takeover.storage.label_revisions import Label
from takeover.storage.store import Store
from takeover.storage.testing import make_episode

pytestmark = pytest.mark.gui

DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "curate.png"
OPERATORS = ("ada", "bo", "cy")
TASKS = ("pick the red cube", "open the drawer", "stack the cups")


def fill(root: Path, n: int = 12, *, cameras: tuple[str, ...] = ("front",)) -> None:
    """``n`` attempts by three operators; a takeover in three of five; some relabelled; two
    versions, the second made from the first."""
    with Store.create(root) as s:
        for i in range(n):
            ep = make_episode(
                f"{0x3F2A9C + 977 * i:06x}{i:02d}",
                30 + (i * 7) % 40,
                seed=i,
                takeover_at=(8 + i % 12) if i % 5 not in (0, 3) else None,
                outcome=("success", "failure", "near_success", "success")[i % 4],
                success=i % 4 != 1,
                frame_every=5,
                cameras=cameras,
            )
            start = 1.7e9 + 3600 * i
            ep.meta = replace(
                ep.meta,
                operator=OPERATORS[i % 3],
                task=TASKS[i % 3],
                started_at=start,
                ended_at=start + ep.num_steps / 10,
            )
            s.add_episode(ep)
        ids = [e.episode_id for e in s.list_episodes()]
        relabel_many(s, ids[1:n:4], Label(outcome="near_success", progress=70), annotator="dee")
        relabel(s, ids[2], Label(outcome="failure", failure_category="stuck"), annotator="eve")
        relabel(s, ids[5], Label(outcome="success", quality="clean"), annotator="fay", role="lead")
        freeze(s, "all-v1", "", message="every attempt so far")
        freeze(s, "takeovers-v1", "has_intervention", message="attempts with a takeover", parent="all-v1")


@pytest.fixture(scope="module")
def store_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("curate") / "store"
    fill(root)
    return root


@pytest.fixture
def root(store_root: Path, tmp_path: Path) -> Path:
    """A copy of the module's store per test, so freezing in one leaves the others as they were."""
    import shutil

    copy = tmp_path / "store"
    shutil.copytree(store_root, copy)
    return copy


@pytest.fixture
def window(qtbot: Any, root: Path, tmp_path: Path) -> Iterator[CurateWindow]:
    w = CurateWindow(lambda: Store.open(root), where=str(root), export_base=tmp_path)
    qtbot.addWidget(w)
    w.start()
    with qtbot.waitExposed(w):
        w.show()
    qtbot.waitUntil(lambda: w.selection is not None and bool(w.versions), timeout=10_000)
    yield w
    w.close()


def type_query(qtbot: Any, w: CurateWindow, text: str) -> None:
    w.query.edit.clear()
    qtbot.keyClicks(w.query.edit, text)
    qtbot.waitUntil(lambda: w.selection is not None and w.selection.query == text, timeout=5000)


def table_ids(w: CurateWindow) -> list[str]:
    return sorted(w.model.episodes[i].id for i in range(w.model.rowCount()))


def test_typing_a_query_shows_the_matching_episodes_and_their_statistics(
    qtbot: Any, window: CurateWindow, root: Path
) -> None:
    w = window
    assert w.count.text() == "12 of 12 episodes match"
    query = "label == failure or operator == cy"
    type_query(qtbot, w, query)
    with Store.open(root) as other:  # the same query, asked of the store without the window
        chosen = select_episodes(other, query)
    expected = sorted(chosen.ids)
    assert 0 < len(expected) < 12
    assert w.count.text() == f"{len(expected)} of 12 episodes match"
    assert table_ids(w) == expected and len(expected) == w.proxy.rowCount()
    s = chosen.stats
    assert w.stats.values["episodes"].text() == str(s.episodes)
    assert w.stats.values["steps"].text() == f"{s.steps:,}"
    assert w.stats.outcome_heights() == [
        s.outcomes[o] for o in ("success", "near_success", "failure", "none")
    ]
    assert s.outcomes["failure"] >= 1


def test_an_error_is_shown_inline_under_its_column_and_the_selection_stays(
    qtbot: Any, window: CurateWindow
) -> None:
    w = window
    type_query(qtbot, w, "steps > 40")
    before = w.count.text()
    w.query.edit.clear()
    qtbot.keyClicks(w.query.edit, "lable == success")
    assert w.query.error.isVisible()
    assert w.query.error.text() == (
        "unknown field 'lable'; did you mean 'label'? (docs/curation.md lists the fields) (column 1)"
    )
    assert w.query.caret.text() == " ^"
    qtbot.wait(400)  # longer than the pause that hands a query on: nothing is asked
    assert w.count.text() == before
    assert not w.query.reads


def test_the_pickers_join_a_clause_as_a_tree(qtbot: Any, window: CurateWindow) -> None:
    w = window
    type_query(qtbot, w, "label == failure or label == near-success")
    w.query.field.setCurrentText("operator")
    w.query.op.setCurrentText("==")
    assert "bo" in [w.query.value.itemText(i) for i in range(w.query.value.count())]  # values from the store
    w.query.value.setCurrentText("bo")
    qtbot.mouseClick(w.query.and_button, Qt.MouseButton.LeftButton)
    expected = "(label == failure or label == near-success) and operator == bo"
    assert w.query.text() == expected
    qtbot.waitUntil(lambda: w.selection is not None and w.selection.query == expected, timeout=5000)
    assert all(e.operator == "bo" and e.label in ("failure", "near_success") for e in w.selection.episodes)


def test_freeze_the_selection_as_a_version_and_a_taken_tag_is_refused(
    qtbot: Any, window: CurateWindow, root: Path
) -> None:
    w = window
    type_query(qtbot, w, "has_intervention and label != failure")
    chosen = sorted(w.selection.ids) if w.selection else []
    qtbot.mouseClick(w.freeze_button, Qt.MouseButton.LeftButton)
    dialog = w.dialog
    assert dialog is not None and dialog.isVisible()
    qtbot.keyClicks(dialog.tag, "takeovers-v1")  # in use
    qtbot.keyClicks(dialog.description, "good takeovers")
    dialog.parent_tag.setCurrentText("takeovers-v1")
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    assert ok is not None and ok.text() == "Freeze"
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.error.isVisible(), timeout=5000)
    assert "takeovers-v1" in dialog.error.text() and "\n" not in dialog.error.text()
    assert dialog.isVisible()
    dialog.tag.clear()
    qtbot.keyClicks(dialog.tag, "good-takeovers-v1")
    qtbot.mouseClick(ok, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.dialog is None and not dialog.isVisible(), timeout=5000)
    qtbot.waitUntil(lambda: "good-takeovers-v1" in [v.tag for v in w.versions], timeout=5000)
    assert w.message.text().startswith("tagged good-takeovers-v1 -> version ")

    with Store.open(root) as other:  # another connection sees the version
        version = other.resolve("good-takeovers-v1")
        parent = other.resolve("takeovers-v1")
    assert sorted(e.episode_id for e in version.manifest.episodes) == chosen
    assert version.message == "good takeovers"
    assert version.manifest.created_from == {
        "selection": "query",
        "query": "has_intervention and label != failure",
    }
    assert version.manifest.parent == parent.digest
    # the tree shows it under its parent
    top = w.versions_view.tree.topLevelItem(0)
    assert top is not None and top.text(0) == "all-v1"
    child = top.child(0)
    assert child is not None and child.text(0) == "takeovers-v1"
    grandchild = child.child(0)
    assert grandchild is not None and grandchild.text(0) == "good-takeovers-v1"


def test_diff_two_versions(qtbot: Any, window: CurateWindow) -> None:
    v = window.versions_view
    v.first.setCurrentText("all-v1")
    v.second.setCurrentText("takeovers-v1")
    qtbot.mouseClick(v.diff_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: v.diff_text.toPlainText().startswith("all-v1 ("), timeout=5000)
    text = v.diff_text.toPlainText()
    # attempts 0, 3, 5, 8 and 10 of the twelve had no takeover
    assert "added 0, removed 5, relabelled 0, re-derived 0, trimmed 0" in text
    assert text.count("\n- ") == 5


def test_export_with_progress(qtbot: Any, window: CurateWindow, tmp_path: Path) -> None:
    w = window
    e = w.export_view
    w.tabs.setCurrentIndex(1)
    e.version.setCurrentText("takeovers-v1")
    e.fmt.setCurrentText("robomimic")
    assert e.out.text() == str(tmp_path / "takeovers-v1-robomimic")
    seen: list[tuple[int, int]] = []
    qtbot.mouseClick(e.start, Qt.MouseButton.LeftButton)
    assert w.export_thread is not None
    w.export_thread.progress.connect(lambda done, total: seen.append((done, total)))
    qtbot.waitUntil(lambda: e.status.text().startswith("exported"), timeout=20_000)
    assert e.status.text().startswith("exported takeovers-v1 as robomimic: 7 episodes")
    assert (e.bar.value(), e.bar.maximum()) == (7, 7)
    assert seen and seen[-1] == (7, 7) and [d for d, _ in seen] == sorted(d for d, _ in seen)
    with h5py.File(tmp_path / "takeovers-v1-robomimic" / "demo.hdf5", "r") as f:
        assert len(f["data"]) == 7
    qtbot.mouseClick(e.start, Qt.MouseButton.LeftButton)  # the folder exists now: refused, one line
    qtbot.waitUntil(lambda: "already exists" in e.status.text(), timeout=10_000)
    assert e.start.isEnabled()


def test_a_store_that_does_not_open_is_said_in_the_window(qtbot: Any, tmp_path: Path) -> None:
    w = CurateWindow(lambda: Store.open(tmp_path / "nowhere"))
    qtbot.addWidget(w)
    w.start()
    w.show()
    qtbot.waitUntil(lambda: w.count.text() == "the store is not open", timeout=5000)
    assert "no dataset store at" in w.message.text()
    w.close()
    assert not w.session.isRunning()


def test_screenshot(qtbot: Any, tmp_path: Path) -> None:
    """The window on a store of 40 attempts with a lineage of four versions (docs/curate.png with
    TAKEOVER_WRITE_DOCS_SCREENSHOT=1)."""
    root = tmp_path / "store"
    fill(root, 40, cameras=())
    with Store.open(root) as s:
        freeze(
            s,
            "good-takeovers-v1",
            "has_intervention and label != failure",
            message="takeovers that ended well",
            parent="takeovers-v1",
        )
        freeze(
            s,
            "world-model-v1",
            "label in (success, near-success)",
            message="for the world model",
            parent="all-v1",
        )
    w = CurateWindow(lambda: Store.open(root), where=str(root), export_base=tmp_path)
    qtbot.addWidget(w)
    w.start()
    w.show()
    qtbot.waitUntil(lambda: w.selection is not None and len(w.versions) == 4, timeout=10_000)
    type_query(qtbot, w, "has_intervention and operator in (bo, cy)")
    v = w.versions_view
    v.first.setCurrentText("takeovers-v1")
    v.second.setCurrentText("good-takeovers-v1")
    qtbot.mouseClick(v.diff_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: v.diff_text.toPlainText().startswith("takeovers-v1 ("), timeout=5000)
    path = tmp_path / "curate.png"
    assert w.grab().save(str(path)) and path.stat().st_size > 20_000
    if os.environ.get("TAKEOVER_WRITE_DOCS_SCREENSHOT") == "1":
        assert w.grab().save(str(DOCS_SCREENSHOT))
    w.close()


def test_no_window_is_left_behind(qtbot: Any, window: CurateWindow) -> None:
    window.close()
    assert not window.session.isRunning()
    assert [t for t in QApplication.topLevelWidgets() if t.isVisible()] == []


_OPEN_AND_CLOSE = """
import sys
from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QApplication
from takeover.app.cli import main
from takeover.app.gui.curate.window import CurateWindow

app = QApplication(sys.argv[:1])
seen = []

def close_when_ready():
    for w in QApplication.topLevelWidgets():
        chosen = w.selection if isinstance(w, CurateWindow) else None
        if isinstance(w, CurateWindow) and chosen is not None and chosen.query == "label == failure":
            seen.append(w.count.text())
            w.close()
            QApplication.quit()
            return
    QTimer.singleShot(50, close_when_ready)

QTimer.singleShot(50, close_when_ready)
code = main(["curate", "--store", sys.argv[1], "--query", "label == failure"])
print(code, seen[0] if seen else "never shown")
"""


def test_takeover_curate_opens_the_screen_on_the_store(root: Path) -> None:
    """`takeover curate --store ROOT --query ...` through main(): the window opens on the store with
    the query, and closing it ends the command. In a process of its own: running the command's
    event loop to its end in the tests' shared QApplication leaves it unfit for the next tests."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run(
        [sys.executable, "-c", _OPEN_AND_CLOSE, str(root)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (
        done.stdout.strip().splitlines()[-1] == "0 1 of 12 episodes match"
    )  # attempt 2, relabelled a failure
