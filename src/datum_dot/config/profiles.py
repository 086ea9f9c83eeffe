"""Find and read dbt's profiles.yml and dbt_project.yml's profile name, in process.

dbt finds profiles.yml through `--profiles-dir`, `DBT_PROFILES_DIR`, the project folder and
`~/.dbt`; `find_profiles_dir` follows the same order without ever starting dbt. Writing the
profiles.yml of an isolated build is `isolatedprofiles`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from datum_dot.config.yamlfile import safe_load
from datum_dot.errors import ConfigError, ProfileError, ProjectNotFoundError

PROFILES_FILE = "profiles.yml"
CONFIG_KEY = "config"  # a top-level block of dbt settings in profiles.yml, not a profile


def find_profiles_dir(
    project_dir: Path, *, flag_dir: Path | None, environ: Mapping[str, str]
) -> Path:
    """Find the folder holding profiles.yml the way dbt does.

    dbt's order: the `--profiles-dir` flag, then `DBT_PROFILES_DIR`, then the project folder if
    it has a profiles.yml, then `~/.dbt`. As in dbt, a folder named by the flag or the variable
    is final: a missing file there is an error, not a reason to look further.

    Args:
        project_dir: The dbt project folder.
        flag_dir: The value of `--profiles-dir`, if given.
        environ: The environment to read `DBT_PROFILES_DIR` from.

    Returns:
        The folder that holds profiles.yml.

    Raises:
        ProfileError: No candidate folder has a profiles.yml; the message lists each place.
    """
    from_env = environ.get("DBT_PROFILES_DIR") or None
    if flag_dir is not None:
        candidates = [(flag_dir, "--profiles-dir")]
    elif from_env is not None:
        candidates = [(Path(from_env), "DBT_PROFILES_DIR")]
    else:
        candidates = [(project_dir, "the project folder"), (Path.home() / ".dbt", "~/.dbt")]
    places = []
    for folder, source in candidates:
        folder = folder.expanduser().absolute()
        if (folder / PROFILES_FILE).is_file():
            return folder
        places.append(f"{folder} ({source})")
    raise ProfileError(
        f"profiles.yml not found; looked in: {', '.join(places)}",
        hint="create ~/.dbt/profiles.yml or pass --profiles-dir / set DBT_PROFILES_DIR",
    )


def read_project_profile_name(project_dir: Path) -> str:
    """Read the `profile:` of a dbt project's dbt_project.yml.

    Args:
        project_dir: The dbt project folder.

    Returns:
        The profile name.

    Raises:
        ProjectNotFoundError: The folder has no dbt_project.yml.
        ConfigError: dbt_project.yml is not valid YAML (the message gives file and line) or is
            not a mapping.
        ProfileError: It has no `profile:`, or the name is a Jinja expression dot cannot render.
    """
    path = project_dir / "dbt_project.yml"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ProjectNotFoundError(
            f"no dbt project in {project_dir}: dbt_project.yml not found",
            hint="run dot in the folder of dbt_project.yml, or pass --project-dir",
        ) from e
    return profile_name_from_text(text, source=str(path))


def profile_name_from_text(text: str, *, source: str) -> str:
    """Read the `profile:` from the text of a dbt_project.yml (for example, as of a commit).

    Args:
        text: The file's content.
        source: How to name the file in messages (`dbt_project.yml at abc12345`).

    Returns:
        The profile name.

    Raises:
        ConfigError: The text is not valid YAML (the message gives file and line) or is not a
            mapping.
        ProfileError: It has no `profile:`, or the name is a Jinja expression dot cannot render.
    """
    try:
        document = safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(
            f"{_where(source, e)}: dbt_project.yml is not valid YAML: {_problem(e)}",
            hint=f"fix the YAML in {source} near that line",
        ) from e
    if not isinstance(document, dict):
        raise ConfigError(
            f"{source}: dbt_project.yml must be a mapping of keys to values",
            hint="see https://docs.getdbt.com/reference/dbt_project.yml",
        )
    name = document.get("profile")
    if name is None or str(name).strip() == "":
        raise ProfileError(
            f"{source} has no `profile:` key, so dot cannot tell which profile to use",
            hint="add `profile: <name of a profile in profiles.yml>` to dbt_project.yml",
        )
    if "{{" in str(name):
        raise ProfileError(
            f"the `profile:` in {source} is a Jinja expression ({name}), which dot does not render",
            hint="write the profile name literally in dbt_project.yml",
        )
    return str(name)


def load_profiles(path: Path) -> dict[str, Any]:
    """Load a profiles.yml.

    Args:
        path: The profiles.yml file.

    Returns:
        Its top-level mapping (empty for an empty file).

    Raises:
        ProfileError: The file is missing, is not valid YAML (the message gives the line), or is
            not a mapping.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise ProfileError(
            f"profiles.yml not found: {path}",
            hint="create it, or pass --profiles-dir / set DBT_PROFILES_DIR to its folder",
        ) from e
    return load_profiles_text(text, source=str(path))


def load_profiles_text(text: str, *, source: str) -> dict[str, Any]:
    """Load a profiles.yml's text read elsewhere (from a commit, say), as `load_profiles` does.

    Args:
        text: The file's content.
        source: How messages name the file (a path, or `1a2b3c4d:profiles.yml`).

    Returns:
        Its top-level mapping (empty for an empty file).

    Raises:
        ProfileError: The text is not valid YAML (the message gives the line), or is not a
            mapping.
    """
    try:
        document = safe_load(text)
    except yaml.YAMLError as e:
        raise ProfileError(
            f"{_where(source, e)}: profiles.yml is not valid YAML: {_problem(e)}",
            hint=f"fix the YAML in {source} near that line (indentation and quoting are the "
            "usual causes)",
        ) from e
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ProfileError(
            f"{source}: profiles.yml must be a mapping of profile names to profiles",
            hint="see https://docs.getdbt.com/docs/core/connect-data-platform/profiles.yml",
        )
    return document


def select_target(
    profiles: Mapping[str, Any], profile: str, target: str | None, *, path: Path | str
) -> tuple[str, dict[str, Any]]:
    """Pick a profile's target from loaded profiles.yml content.

    Args:
        profiles: The loaded profiles.yml.
        profile: The profile name.
        target: The target name, or None for the profile's default `target:`.
        path: Where the profiles came from, for messages.

    Returns:
        The target's name and a copy of its settings.

    Raises:
        ProfileError: The profile or target is not defined (the message lists the ones that
            are), no target was given and the profile has no default, or the entries are not
            mappings.
    """
    names = sorted(str(k) for k in profiles if k != CONFIG_KEY)
    if profile not in profiles or profile == CONFIG_KEY:
        raise ProfileError(
            f"profile '{profile}' not found in {path}; defined profiles: {_listing(names)}",
            hint=f"add profile '{profile}' to {path}, or set `profile:` in dbt_project.yml "
            "to one of the defined ones",
        )
    body = profiles[profile]
    outputs = body.get("outputs") if isinstance(body, dict) else None
    if not isinstance(outputs, dict):
        raise ProfileError(
            f"profile '{profile}' in {path} has no `outputs:` mapping of targets",
            hint="see https://docs.getdbt.com/docs/core/connect-data-platform/profiles.yml",
        )
    by_name = {str(k): v for k, v in outputs.items()}
    chosen = target if target is not None else body.get("target")
    if chosen is None:
        raise ProfileError(
            f"profile '{profile}' in {path} has no default `target:` and no target was given; "
            f"defined targets: {_listing(sorted(by_name))}",
            hint=f"add `target: <name>` to profile '{profile}', or name the target in the "
            "environment",
        )
    chosen = str(chosen)
    if "{{" in chosen:
        raise ProfileError(
            f"the default target of profile '{profile}' in {path} is a Jinja expression "
            f"({chosen}), which dot does not render",
            hint=f"name the target in the environment; defined targets: {_listing(by_name)}",
        )
    settings = by_name.get(chosen)
    if settings is None:
        raise ProfileError(
            f"target '{chosen}' not found in profile '{profile}' ({path}); "
            f"defined targets: {_listing(sorted(by_name))}",
            hint=f"add output '{chosen}' to profile '{profile}', or use one of the defined ones",
        )
    if not isinstance(settings, dict):
        raise ProfileError(
            f"target '{chosen}' of profile '{profile}' in {path} is not a mapping of settings",
            hint="see https://docs.getdbt.com/docs/core/connect-data-platform/profiles.yml",
        )
    return chosen, dict(settings)


def _where(path: Path | str, error: yaml.YAMLError) -> str:
    mark = getattr(error, "problem_mark", None)
    return f"{path}:{mark.line + 1}" if mark is not None else str(path)


def _problem(error: yaml.YAMLError) -> str:
    problem = getattr(error, "problem", None)
    return str(problem) if problem else str(error).splitlines()[0]


def _listing(names: list[str] | Mapping[str, Any]) -> str:
    return ", ".join(sorted(names)) if names else "(none)"
