"""The README's labelling walkthrough, run as written: each `takeover` line of its shell block
through the real command line (a `$(takeover ...)` substitution run the same way), then its Python
block, on a store of recorded-like episodes (the recording itself, `takeover run`, is tested
elsewhere)."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from takeover.app.cli import main
from takeover.storage.store import Store
from takeover.storage.testing import make_episode

README = Path(__file__).resolve().parents[2] / "README.md"


def _blocks() -> tuple[list[str], str]:
    text = README.read_text()
    part = text[text.index("<!-- walkthrough -->") : text.index("<!-- /walkthrough -->")]
    shell = re.search(r"```bash\n(.*?)```", part, re.S)
    python = re.search(r"```python\n(.*?)```", part, re.S)
    assert shell is not None and python is not None
    lines = [ln.split("  #")[0].strip() for ln in shell.group(1).splitlines()]
    return [ln for ln in lines if ln], python.group(1)


def _run(line: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(shlex.split(line)[1:])
    return code, out.getvalue()


def _expand(line: str) -> str:
    """`$(takeover ...)` replaced by what that command prints, as a shell would."""

    def sub(m: re.Match[str]) -> str:
        code, printed = _run(m.group(1))
        assert code == 0, m.group(1)
        return " ".join(printed.split())

    return re.sub(r"\$\((takeover [^)]*)\)", sub, line)


def test_the_readme_walkthrough_works_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store = tmp_path / "store"
    with Store.create(store) as st:
        st.add_episode(make_episode("ok-1", 20, seed=1))
        st.add_episode(make_episode("ok-2", 16, seed=2, takeover_at=8))
        st.add_episode(make_episode("fail-1", 24, seed=3, outcome="failure", success=False, takeover_at=10))
        st.add_episode(make_episode("fail-2", 18, seed=4, outcome="", success=False, takeover_at=5))
    monkeypatch.setenv("TAKEOVER_STORE", str(store))
    monkeypatch.setenv("TAKEOVER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TAKEOVER_CONFIG", str(tmp_path / "none.toml"))
    shell, python = _blocks()
    assert shell[0].startswith("takeover data commit v1") and "takeover data diff v1 v2" in shell[-1]
    printed = {}
    for line in shell:
        code, out = _run(_expand(line))
        assert code == 0, (line, capsys.readouterr().err)
        printed[line.split()[2] if len(line.split()) > 2 else line] = out
    diff = printed["diff"]
    assert "~ fail-1  relabelled failure -> near_success" in diff
    assert "~ fail-2  relabelled" in diff and "near_success" in diff
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(python, "README walkthrough", "exec"), {})  # the README's own code, as written
    lines = out.getvalue().splitlines()
    assert lines[0] == "['near_success', 'near_success', 'success', 'success']"  # fail-1, fail-2, ok-1, ok-2
    assert len(lines) == 2 and lines[1].startswith("tensor(")
