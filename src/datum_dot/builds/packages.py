"""The dbt packages of an isolated build: which ones a commit declares, and where they come from.

A commit's packages are keyed by a digest of its package files (`packages.yml`,
`dependencies.yml`, `package-lock.yml`) and of its `local:` packages' contents. The first build
of a digest fills `.dot/cache/deps/<digest>/`; every build with that digest copies the cache. To
fill the cache, `dbt deps` runs in the worktree, unless the user's own checkout has already
installed exactly the same packages (see `checkout_install`), which are then copied instead.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import yaml

from datum_dot.config.yamlfile import safe_load
from datum_dot.errors import ConfigError
from datum_dot.home.locks import file_lock

LOCK_TIMEOUT_SECONDS = 30 * 60.0
PACKAGE_FILES = ("packages.yml", "dependencies.yml", "package-lock.yml")
DEPS_MARKER = ".dot-deps-digest"

Installed = Literal["installed", "cached", "copied", "current", "none"]


def install_packages(
    project_dir: Path,
    *,
    checkout_dir: Path,
    cache_root: Path,
    run_deps: Callable[[], None],
) -> Installed:
    """Put the packages the project at `project_dir` declares into its packages folder.

    Args:
        project_dir: The dbt project in the build's worktree.
        checkout_dir: The same dbt project in the user's checkout (read, never written).
        cache_root: `.dot/cache/deps`.
        run_deps: Runs `dbt deps` in `project_dir`.

    Returns:
        "none" (no packages declared), "current" (already in place), "cached" (copied from the
        cache), "copied" (the checkout's identical install filled the cache), or "installed"
        (`dbt deps` ran).

    Raises:
        ConfigError: `packages-install-path` leads outside the project.
        DotError: `dbt deps` failed (from `run_deps`), or the cache lock timed out.
    """
    digest = deps_digest(project_dir)
    if digest is None:
        return "none"
    configured = install_path(project_dir)
    install_dir = project_dir / configured
    if not install_dir.resolve().is_relative_to(project_dir.resolve()):
        # dbt deps (and the copy from the cache) would replace that folder: the one the
        # user's checkout and every other build read their packages from
        raise ConfigError(
            f"packages-install-path '{configured}' in dbt_project.yml is outside the project, "
            "so an isolated build would replace the packages your checkout uses",
            "set packages-install-path to a folder inside the project (the default is "
            "dbt_packages), or build the working tree without @ref",
        )
    marker = install_dir / DEPS_MARKER
    if marker.is_file() and marker.read_text().strip() == digest:
        return "current"
    cache = cache_root / digest
    with file_lock(cache.with_suffix(".lock"), timeout=LOCK_TIMEOUT_SECONDS):
        how: Installed = "cached"
        if not (cache / DEPS_MARKER).is_file():
            source = checkout_install(checkout_dir, project_dir, digest)
            if source is None:
                run_deps()
                source, how = install_dir, "installed"
            else:
                how = "copied"
            _fill_cache(cache, source, digest)
        _replace_tree(cache, install_dir)
    return how


def deps_digest(project_dir: Path) -> str | None:
    """Digest of the package files and any `local:` package contents; None without packages.

    Two commits with the same digest install the same packages, so the second reuses the first's.
    A project whose package files declare no package at all has none: `dbt deps` would install
    nothing.
    """
    present = [name for name in PACKAGE_FILES if (project_dir / name).is_file()]
    if not any(_declared(project_dir, name) for name in ("packages.yml", "dependencies.yml")):
        return None
    h = hashlib.sha256()
    for name in present:
        h.update(name.encode() + b"\0" + (project_dir / name).read_bytes() + b"\0")
    for local in _local_paths(project_dir, ("packages.yml", "dependencies.yml")):
        folder = (project_dir / local).resolve()
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            h.update(str(file.relative_to(folder)).encode() + b"\0" + file.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def checkout_install(checkout_dir: Path, project_dir: Path, digest: str) -> Path | None:
    """The checkout's packages folder, when it holds exactly what `dbt deps` would install here.

    Only `local:` packages can be proven equal: their contents are part of the digest, and
    `dbt deps` installs each as a link to its folder, named after the package. A package from
    the hub, git or a tarball leaves no trace of its version that could be trusted, so any such
    package (or any doubt) answers None and `dbt deps` runs.

    Args:
        checkout_dir: The dbt project in the user's checkout.
        project_dir: The same project in the build's worktree.
        digest: `deps_digest(project_dir)`.

    Returns:
        The checkout's packages folder, or None when it is not provably the same install.
    """
    if checkout_dir.resolve() == project_dir.resolve():
        return None
    try:
        if deps_digest(checkout_dir) != digest:
            return None
        folder = install_path(checkout_dir)
        if folder != install_path(project_dir):
            return None
        expected = _expected_links(checkout_dir)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    installed = checkout_dir / folder
    if expected is None or not installed.is_dir() or installed.is_symlink():
        return None
    entries = {entry.name: entry for entry in installed.iterdir()}
    if set(entries) != set(expected):
        return None
    for name, target in expected.items():
        entry = entries[name]
        if not entry.is_symlink() or entry.resolve() != target:
            return None
    return installed


def install_path(project_dir: Path) -> str:
    """The project's `packages-install-path` (`dbt_packages` unless set without Jinja)."""
    data = safe_load((project_dir / "dbt_project.yml").read_text())
    value = data.get("packages-install-path") if isinstance(data, dict) else None
    return str(value) if isinstance(value, str) and "{{" not in value else "dbt_packages"


def _expected_links(checkout_dir: Path) -> dict[str, Path] | None:
    """Package name -> the folder its link must point at, when every package is `local:`."""
    sources = [name for name in PACKAGE_FILES if (checkout_dir / name).is_file()]
    found = {name: _entries(checkout_dir, name) for name in sources}
    if any(entries is None for entries in found.values()):
        return None
    declared = tuple(name for name in sources if name != "package-lock.yml")
    paths = _local_paths(checkout_dir, declared)
    if len(paths) != sum(len(found[name] or []) for name in declared):
        return None  # a hub, git or tarball package
    if any("{{" in path for path in paths):
        return None  # a path dbt would render
    if "package-lock.yml" in sources:
        locked = _local_paths(checkout_dir, ("package-lock.yml",))
        if len(locked) != len(found["package-lock.yml"] or []):
            return None
        if {_norm(checkout_dir, p) for p in locked} != {_norm(checkout_dir, p) for p in paths}:
            return None
    links: dict[str, Path] = {}
    for path in paths:
        folder = _norm(checkout_dir, path)
        if any(_declared(folder, name) for name in ("packages.yml", "dependencies.yml")):
            return None  # its own packages would be installed too
        project = safe_load((folder / "dbt_project.yml").read_text()) or {}
        name = project.get("name") if isinstance(project, dict) else None
        if not isinstance(name, str) or "{{" in name or name in links:
            return None
        links[name] = folder
    return links


def _norm(project_dir: Path, path: str) -> Path:
    return (project_dir / path).resolve()


def _entries(project_dir: Path, name: str) -> list[object] | None:
    """The file's `packages` list ([] when absent or empty); None when it is malformed."""
    file = project_dir / name
    if not file.is_file():
        return []
    try:
        data = safe_load(file.read_text())
    except (yaml.YAMLError, UnicodeDecodeError):
        return None  # not YAML: `dbt deps` says what is wrong
    if data is None:
        return []
    if not isinstance(data, dict):
        return None
    packages = data.get("packages")
    if packages is None:
        return []
    return packages if isinstance(packages, list) else None


def _declared(project_dir: Path, name: str) -> bool:
    # A malformed file counts as declaring packages: `dbt deps` then says what is wrong.
    entries = _entries(project_dir, name)
    return entries is None or bool(entries)


def _local_paths(project_dir: Path, names: tuple[str, ...]) -> list[str]:
    return [
        entry["local"]
        for name in names
        for entry in _entries(project_dir, name) or []
        if isinstance(entry, dict) and isinstance(entry.get("local"), str)
    ]


def _fill_cache(cache: Path, source: Path, digest: str) -> None:
    # Copy with symlinks resolved: `local:` packages are links into a worktree or the checkout,
    # and the cache must not depend on a folder that `dot clean` or the user may change.
    tmp = cache.with_name(cache.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    if source.is_dir():
        shutil.copytree(source, tmp, symlinks=False)
    else:
        tmp.mkdir(parents=True)
    (tmp / DEPS_MARKER).write_text(digest + "\n")
    shutil.rmtree(cache, ignore_errors=True)
    tmp.rename(cache)


def _replace_tree(source: Path, dest: Path) -> None:
    if dest.is_symlink() or dest.is_file():
        dest.unlink()
    elif dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(source, dest, symlinks=False)
