"""Start-up prompts: ignore `.dot/` in git and exclude it from VS Code, asked only of a person.

The module's decisions are tested directly against real repositories; the asking itself runs the
installed `dot` under a pseudo-terminal.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from datum_dot.runs import prompts
from datum_dot.vcs import git
from tests.helpers.history import (
    History,
    make_history,
    run_dot,
    run_dot_in_pty,
    run_dot_with_tty_stdin,
)
from tests.helpers.repo import GitRepo, make_repo

pytestmark = pytest.mark.xdist_group("prompts")

GITIGNORE_Q = ".gitignore?"
VSCODE_Q = "VS Code"


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return make_repo(tmp_path / "repo")


def keys(project: Path) -> list[str]:
    return [s.key for s in prompts.pending(project)[0]]


def make_both_useful(project: Path, repo_root: Path | None = None) -> None:
    """A `.vscode/` folder (VS Code is in use) and a `.dot/.gitignore` emptied by hand (so git
    sees what dot builds): the two situations where a suggestion is of use."""
    (project / ".dot").mkdir(parents=True, exist_ok=True)
    (project / ".dot" / ".gitignore").write_text("")
    ((repo_root or project) / ".vscode").mkdir(exist_ok=True)


# --- what is offered -----------------------------------------------------------------------


def test_prompts_pending_offers_nothing_in_a_fresh_repository(repo: GitRepo) -> None:
    # Regression: the first build offered to create .vscode/ in a repository without one, and
    # to edit .gitignore although the .dot/.gitignore every build writes ignores everything.
    assert prompts.pending(repo.path) == ([], [])
    (repo.path / ".dot").mkdir()
    (repo.path / ".dot" / ".gitignore").write_text("*\n")  # as every isolated build writes it
    assert prompts.pending(repo.path) == ([], [])


def test_prompts_pending_offers_what_is_useful(repo: GitRepo) -> None:
    make_both_useful(repo.path)
    suggestions, warnings = prompts.pending(repo.path)
    assert [s.key for s in suggestions] == [prompts.GITIGNORE, prompts.VSCODE]
    assert suggestions[0].path == repo.path / ".gitignore"
    assert suggestions[1].path == repo.path / ".vscode" / "settings.json"
    assert warnings == []


def test_prompts_gitignore_dotenv_line_does_not_count(repo: GitRepo) -> None:
    make_both_useful(repo.path)
    repo.write({".gitignore": ".dotenv\n.dot.bak\n"})
    assert prompts.GITIGNORE in keys(repo.path)


@pytest.mark.parametrize(
    "where",
    [".gitignore", ".git/info/exclude"],
)
def test_prompts_gitignore_asks_git_whether_dot_is_ignored(repo: GitRepo, where: str) -> None:
    make_both_useful(repo.path)
    assert prompts.GITIGNORE in keys(repo.path)
    repo.write({where: "# build folders\n.dot/\n"})
    assert prompts.GITIGNORE not in keys(repo.path)


def test_prompts_gitignore_rule_in_parent_folder_counts(repo: GitRepo) -> None:
    project = repo.path / "analytics"
    project.mkdir()
    make_both_useful(project, repo.path)
    assert prompts.pending(project)[0][0].path == project / ".gitignore"
    repo.write({".gitignore": "analytics/.dot/\n"})
    assert prompts.GITIGNORE not in keys(project)


def test_prompts_outside_a_repository_offers_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    assert prompts.pending(folder) == ([], [])


# --- applying and declining ----------------------------------------------------------------


def test_prompts_apply_gitignore_appends_line_git_honours(repo: GitRepo) -> None:
    make_both_useful(repo.path)
    repo.write({".gitignore": "target/"})  # no newline at the end
    suggestion = prompts.pending(repo.path)[0][0]
    prompts.apply(suggestion)
    assert (repo.path / ".gitignore").read_text() == "target/\n.dot/\n"
    assert git.is_ignored(repo.path, repo.path / ".dot")
    assert prompts.GITIGNORE not in keys(repo.path)


def test_prompts_vscode_invalid_json_left_unchanged_with_warning(repo: GitRepo) -> None:
    settings = repo.path / ".vscode" / "settings.json"
    settings.parent.mkdir()
    original = b'{\n  // VS Code allows comments, JSON does not\n  "editor.tabSize": 2,\n}\n'
    settings.write_bytes(original)
    suggestions, warnings = prompts.pending(repo.path)
    assert prompts.VSCODE not in [s.key for s in suggestions]
    assert len(warnings) == 1
    assert str(settings) in warnings[0]
    assert "not valid JSON" in warnings[0]
    assert settings.read_bytes() == original


def test_prompts_vscode_valid_json_merged_keeping_keys(repo: GitRepo) -> None:
    settings = repo.path / ".vscode" / "settings.json"
    settings.parent.mkdir()
    settings.write_text(
        json.dumps({"editor.tabSize": 2, "search.exclude": {"**/node_modules": True}})
    )
    suggestion = next(s for s in prompts.pending(repo.path)[0] if s.key == prompts.VSCODE)
    prompts.apply(suggestion)
    data = json.loads(settings.read_text())
    assert data["editor.tabSize"] == 2
    assert data["search.exclude"] == {
        "**/node_modules": True,
        "**/.dot": True,
        "**/.dot/**": True,
    }
    assert data["files.watcherExclude"] == {"**/.dot/**": True}
    assert prompts.VSCODE not in keys(repo.path)


def test_prompts_decline_remembered_per_project(repo: GitRepo, tmp_path: Path) -> None:
    other = make_repo(tmp_path / "other")
    make_both_useful(repo.path)
    make_both_useful(other.path)
    prompts.decline(repo.path, prompts.VSCODE)
    assert keys(repo.path) == [prompts.GITIGNORE]
    assert keys(other.path) == [prompts.GITIGNORE, prompts.VSCODE]
    prompts.decline(repo.path, prompts.GITIGNORE)
    assert keys(repo.path) == []
    assert not (repo.path / ".gitignore").exists()


# --- asking, through the installed `dot` ---------------------------------------------------


@pytest.mark.slow
def test_prompts_tty_asks_applies_yes_and_remembers_no(tmp_path: Path) -> None:
    history = make_history(tmp_path)
    project = history.example.path
    make_both_useful(project)
    ignore_before = (project / ".gitignore").read_text()
    first = run_dot_in_pty(
        "ls", "prod@v1", cwd=project, env=history.environ,
        answers={GITIGNORE_Q: "y", VSCODE_Q: "n"},
    )  # fmt: skip
    assert first.returncode == 0, first.output
    assert first.output.count("[Y/n]") == 2
    assert (project / ".gitignore").read_text() == ignore_before + ".dot/\n"
    assert not (project / ".vscode" / "settings.json").exists()
    assert "not asking again for this project" in first.output
    second = run_dot_in_pty("ls", "prod@v1", cwd=project, env=history.environ)
    assert second.returncode == 0, second.output
    assert "[Y/n]" not in second.output
    assert "jaffle_dot.marts.orders" in second.output  # what `dbt ls` prints


@pytest.fixture(scope="module")
def unasked(
    module_monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> History:
    """A project where the VS Code suggestion applies (and, before the first build, the
    .gitignore one); tests here must leave it that way."""
    history = make_history(tmp_path_factory.mktemp("unasked"))
    (history.example.path / ".vscode").mkdir()
    return history


@pytest.mark.slow
@pytest.mark.parametrize("how", ["not_a_tty", "disable_prompts", "ci"])
def test_prompts_never_shown_without_a_person(unasked: History, how: str) -> None:
    project = unasked.example.path
    ignore_before = (project / ".gitignore").read_bytes()
    pending_before = keys(project)
    assert prompts.VSCODE in pending_before
    args = ("ls", "prod@v1")
    if how == "not_a_tty":
        result = run_dot(*args, cwd=project, env=unasked.environ)
        code, output = result.returncode, result.stdout + result.stderr
    else:
        extra = ("--disable-prompts",) if how == "disable_prompts" else ()
        env = {**unasked.environ, **({"CI": "true"} if how == "ci" else {})}
        pty_result = run_dot_in_pty(*args, *extra, cwd=project, env=env, timeout=120)
        code, output = pty_result.returncode, pty_result.output
    assert code == 0, output
    assert "[Y/n]" not in output
    assert "jaffle_dot.marts.orders" in output  # dbt ran: the questions would have come first
    assert (project / ".gitignore").read_bytes() == ignore_before
    assert not (project / ".vscode" / "settings.json").exists()
    assert prompts.VSCODE in keys(project)  # neither applied nor declined


@pytest.mark.slow
def test_prompts_not_asked_when_stderr_redirected(unasked: History) -> None:
    # Regression: with stdin a terminal but stderr redirected (`dot build prod@main 2>log`),
    # the question went into the log and dot waited for an answer for ever.
    project = unasked.example.path
    assert prompts.VSCODE in keys(project)
    result = run_dot_with_tty_stdin("ls", "prod@v1", cwd=project, env=unasked.environ)
    assert result.returncode == 0, result.stderr
    assert "[Y/n]" not in result.stderr
    assert "jaffle_dot.marts.orders" in result.stdout
    assert prompts.VSCODE in keys(project)
