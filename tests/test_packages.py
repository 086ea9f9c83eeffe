"""Where an isolated build's dbt packages come from: the cache, the checkout's install, `dbt deps`.

Real git repositories, real `dbt deps` and real builds on DuckDB; the warehouse is queried to show
which package code a build used.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from datum_dot.builds.packages import DEPS_MARKER, checkout_install, deps_digest, install_packages
from datum_dot.errors import DotError, ExitCode
from tests.helpers.example import ExampleProject
from tests.helpers.history import capture_user_state, run_in_process, select_from

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("isolated_builds")]

# The seed and the staging model that calls the package's macro `cents_to_dollars`.
PAYMENTS = ("-s", "+stg_payments")
MACRO = Path("packages") / "dot_utils" / "macros" / "cents_to_dollars.sql"
INSTALLING = "installing dbt packages"


def _install_in_checkout(example: ExampleProject) -> Path:
    """Run `dbt deps` in the user's checkout, as a user would before working on the project."""
    record, _ = run_in_process(example.path, "prod", command=("deps",))
    assert record.exit_code is ExitCode.OK, record.error
    link = example.path / "dbt_packages" / "dot_utils"
    assert link.is_symlink()
    return link


def _dollars_match_cents(example: ExampleProject, schema: str) -> bool:
    rows = select_from(example, "count(*), count(*) filter (amount * 100 = amount_cents)",
                       schema, "stg_payments")  # fmt: skip
    total, matching = rows[0]
    return bool(total) and total == matching


def test_packages_first_build_copies_checkout_install_of_same_spec(
    example: ExampleProject,
) -> None:
    link = _install_in_checkout(example)
    target = link.resolve()
    before = capture_user_state(example.repo.path)
    record, observer = run_in_process(example.path, "prod@HEAD", *PAYMENTS)
    assert record.exit_code is ExitCode.OK, record.error
    assert not any(INSTALLING in step for step in observer.steps), observer.steps
    short = example.repo.head()[:8]
    installed = example.path / ".dot" / "build" / short / "worktree" / "dbt_packages"
    digest = (installed / DEPS_MARKER).read_text().strip()
    assert (example.path / ".dot" / "cache" / "deps" / digest / "dot_utils").is_dir()
    assert not (installed / "dot_utils").is_symlink()  # a copy: the checkout may change later
    assert (installed / "dot_utils" / "macros" / "cents_to_dollars.sql").is_file()
    assert _dollars_match_cents(example, f"analytics_{short}")
    # The checkout was only read.
    assert capture_user_state(example.repo.path) == before
    assert link.is_symlink()
    assert link.resolve() == target
    assert sorted(p.name for p in link.parent.iterdir()) == ["dot_utils"]


def test_packages_checkout_with_other_package_contents_runs_deps(example: ExampleProject) -> None:
    _install_in_checkout(example)
    # An uncommitted edit in the checkout's local package: the commit declares other code.
    macro = example.path / MACRO
    macro.write_text(macro.read_text().replace("/ 100.0", "/ 1.0"))
    record, observer = run_in_process(example.path, "prod@HEAD", *PAYMENTS)
    assert record.exit_code is ExitCode.OK, record.error
    assert any(INSTALLING in step for step in observer.steps), observer.steps
    # The commit's macro divides by 100; the checkout's edited one would not.
    assert _dollars_match_cents(example, f"analytics_{example.repo.head()[:8]}")
    assert "/ 1.0" in macro.read_text()


def test_packages_checkout_without_install_runs_deps(example: ExampleProject) -> None:
    record, observer = run_in_process(example.path, "prod@HEAD", *PAYMENTS)
    assert record.exit_code is ExitCode.OK, record.error
    assert any(INSTALLING in step for step in observer.steps), observer.steps
    assert not (example.path / "dbt_packages").exists()


@pytest.fixture
def installed(example: ExampleProject, tmp_path: Path) -> tuple[Path, Path]:
    """The checkout with `dbt deps` run, and a copy of its files standing for a worktree."""
    _install_in_checkout(example)
    project = tmp_path / "worktree"
    shutil.copytree(
        example.path, project, ignore=shutil.ignore_patterns(".git", "dbt_packages", ".dot")
    )
    return example.path, project


def test_packages_checkout_install_matches_same_local_spec(installed: tuple[Path, Path]) -> None:
    checkout, project = installed
    digest = deps_digest(project)
    assert digest is not None
    assert checkout_install(checkout, project, digest) == checkout / "dbt_packages"


def _extra_folder(checkout: Path, project: Path) -> None:
    (checkout / "dbt_packages" / "dbt_utils").mkdir()


def _copied_not_linked(checkout: Path, project: Path) -> None:
    link = checkout / "dbt_packages" / "dot_utils"
    link.unlink()
    shutil.copytree(checkout / "packages" / "dot_utils", link)


def _link_elsewhere(checkout: Path, project: Path) -> None:
    other = checkout.parent / "other_utils"
    shutil.copytree(checkout / "packages" / "dot_utils", other)
    link = checkout / "dbt_packages" / "dot_utils"
    link.unlink()
    link.symlink_to(other)


def _hub_package(checkout: Path, project: Path) -> None:
    for root in (checkout, project):
        with (root / "packages.yml").open("a") as f:
            f.write("  - package: dbt-labs/dbt_utils\n    version: 1.3.0\n")


def _renamed_package(checkout: Path, project: Path) -> None:
    for root in (checkout, project):
        file = root / "packages" / "dot_utils" / "dbt_project.yml"
        file.write_text(file.read_text().replace("name: dot_utils", "name: dot_helpers"))


def _transitive_package(checkout: Path, project: Path) -> None:
    for root in (checkout, project):
        (root / "packages" / "dot_utils" / "packages.yml").write_text(
            "packages:\n  - package: dbt-labs/dbt_utils\n    version: 1.3.0\n"
        )


def _lock_names_other_path(checkout: Path, project: Path) -> None:
    for root in (checkout, project):
        shutil.copytree(root / "packages" / "dot_utils", root / "packages" / "dot_utils_v2")
        lock = root / "package-lock.yml"
        lock.write_text(lock.read_text().replace("packages/dot_utils", "packages/dot_utils_v2"))


def _other_install_path(checkout: Path, project: Path) -> None:
    with (project / "dbt_project.yml").open("a") as f:
        f.write('packages-install-path: "vendor"\n')


@pytest.mark.parametrize(
    "change",
    [
        _extra_folder,
        _copied_not_linked,
        _link_elsewhere,
        _hub_package,
        _renamed_package,
        _transitive_package,
        _lock_names_other_path,
        _other_install_path,
    ],
)
def test_packages_checkout_install_refused_when_in_doubt(
    installed: tuple[Path, Path], change: Callable[[Path, Path], None]
) -> None:
    checkout, project = installed
    change(checkout, project)
    digest = deps_digest(project)
    assert digest is not None
    assert checkout_install(checkout, project, digest) is None


def assert_digest_follows_the_file(file: Path) -> None:
    """The project's digest is a 16-hex-digit value that changes when `file` does."""
    digest = deps_digest(file.parent)
    assert digest is not None
    assert re.fullmatch(r"[0-9a-f]{16}", digest), digest
    with file.open("a") as f:
        f.write("# edited\n")
    assert deps_digest(file.parent) not in (None, digest)


def test_packages_digest_none_when_no_package_is_declared(tmp_path: Path) -> None:
    (tmp_path / "packages.yml").write_text("packages: []\n")
    (tmp_path / "dependencies.yml").write_text("projects:\n  - name: upstream\n")
    assert deps_digest(tmp_path) is None
    (tmp_path / "dependencies.yml").write_text("packages:\n  - local: ../shared\n")
    assert_digest_follows_the_file(tmp_path / "dependencies.yml")


def test_packages_digest_malformed_file_counts_as_declaring(tmp_path: Path) -> None:
    # `dbt deps` must run to report the mistake; skipping it would hide the file.
    (tmp_path / "packages.yml").write_text("- local: ../shared\n")
    assert_digest_follows_the_file(tmp_path / "packages.yml")


def test_packages_digest_unparsable_file_counts_as_declaring(tmp_path: Path) -> None:
    # Not YAML at all: still `dbt deps`'s to report, never an unexpected error here.
    (tmp_path / "packages.yml").write_text("packages: [\n  - local: ../shared\n")
    assert_digest_follows_the_file(tmp_path / "packages.yml")


def test_packages_unparsable_packages_file_fails_the_run_through_dbt_deps(
    example: ExampleProject,
) -> None:
    example.repo.commit({"packages.yml": "packages: [\n  - local: packages/dot_utils\n"}, "bad")
    with pytest.raises(DotError, match="dbt deps failed"):
        run_in_process(example.path, "prod@HEAD", *PAYMENTS)
    logs = example.dot("logs", "--last", "1", "--json")
    assert '"status": "FAILED"' in logs.stdout, logs.stdout


@pytest.mark.parametrize("configured", ["{outside}", "../shared_packages"])
def test_packages_install_path_outside_the_project_is_refused(
    tmp_path: Path, configured: str
) -> None:
    outside = tmp_path / "shared_packages"
    (outside / "kept").mkdir(parents=True)
    project = tmp_path / "worktree"
    (project / "local_pkg").mkdir(parents=True)
    path = configured.format(outside=outside)
    (project / "dbt_project.yml").write_text(
        f"name: p\nversion: '1'\nprofile: p\npackages-install-path: '{path}'\n"
    )
    (project / "packages.yml").write_text("packages:\n  - local: local_pkg\n")

    def run_deps() -> None:
        raise AssertionError("dbt deps must not run")

    with pytest.raises(DotError) as caught:
        install_packages(
            project, checkout_dir=tmp_path / "checkout", cache_root=tmp_path / "cache",
            run_deps=run_deps,
        )  # fmt: skip
    assert caught.value.exit_code == ExitCode.BAD_INPUT
    assert "is outside the project" in caught.value.message
    assert "packages-install-path" in caught.value.hint
    assert [p.name for p in outside.iterdir()] == ["kept"]
