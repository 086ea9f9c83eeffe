"""A schedule as a Kubernetes `batch/v1` CronJob that runs `dot schedule run NAME` in a pod.

The CronJob keeps the cron expression and reads it in the schedule's time zone (`timeZone`,
stable since Kubernetes 1.27). Overlap maps to `concurrencyPolicy: Forbid` for both policies;
for `queue` the starting deadline is the queue's wait, so a firing held back by a running Job
still starts once it ends (Kubernetes keeps one, not a queue). The project comes from the image
(`--repo-dir`) or from an init container cloning `--git-url` and checking out the pinned commit.
Secrets are referenced by name: the profile and each variable it reads come from one Secret.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from datum_dot.errors import ScheduleError
from datum_dot.scheduling.export.artifact import (
    TIMEOUT_GRACE,
    ExportedFile,
    Rendering,
    describe,
    yaml_text,
)
from datum_dot.scheduling.export.cronfields import check_portable_days, compact
from datum_dot.scheduling.export.definition import DEFINITION_ENV, encode_definition
from datum_dot.scheduling.export.source import ExportSource
from datum_dot.scheduling.fire import QUEUE_WAIT
from datum_dot.scheduling.schedules import Overlap

OLDEST_VERSION = "1.27.0"
"""The oldest Kubernetes whose CronJob has a stable `timeZone`: the oldest the export supports."""
SKIP_DEADLINE = 300
HISTORY_LIMIT = 3
USER_ID = 10001
"""The non-root user of the repository's Containerfile."""
STATE_DIR = "/var/lib/datum-dot"
PROFILES_DIR = "/etc/datum-dot/profiles"
WORKSPACE = "/workspace"
DATABASE_URL_ENV = "DATUM_DATABASE_URL"
_NAME_LIMIT = 52  # a CronJob's name leaves 11 characters for its Jobs' suffix
_LABEL_VALUE = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?")
_PREFIX = "datum-dot"


@dataclass(frozen=True)
class KubernetesOptions:
    """How the CronJob's pod gets dot, the project and its secrets.

    Attributes:
        image: The container image with dot, git and the dbt adapter (`--image`).
        git_url: Clone the repository from here in an init container (`--git-url`).
        repo_dir: Or: the repository's folder inside the image (`--repo-dir`).
        secret: The Secret holding profiles.yml and the profile's variables (`--secret`).
        namespace: The CronJob's namespace; none: the one `kubectl` applies it to.
        profiles_in_repo: profiles.yml is tracked in the project folder: no Secret mount.
        starting_deadline: `startingDeadlineSeconds`; none: 300 for skip, the queue's wait.
    """

    image: str
    git_url: str | None = None
    repo_dir: str | None = None
    secret: str | None = None
    namespace: str | None = None
    profiles_in_repo: bool = False
    starting_deadline: int | None = None


def render_cronjob(source: ExportSource, options: KubernetesOptions) -> Rendering:
    """The CronJob of one schedule, in `<project>-<schedule>.cronjob.yaml`.

    Raises:
        ScheduleError: The options do not say where the project comes from, the git URL holds
            credentials, the name is too long, or the cron expression reads differently there.
    """
    _check_options(options)
    name = source.slug
    if len(name) > _NAME_LIMIT:
        raise ScheduleError(
            f"the CronJob name '{name}' is longer than Kubernetes allows ({_NAME_LIMIT})",
            "give the schedule a shorter name: dot schedule remove, then dot schedule add",
        )
    schedule = source.located.schedule
    secret = options.secret or f"{name}-dbt"
    labels = _labels(source)
    annotations = _annotations(source)
    job_spec: dict[str, Any] = {"backoffLimit": 0}
    if schedule.timeout is not None:
        job_spec["activeDeadlineSeconds"] = math.ceil(schedule.timeout) + TIMEOUT_GRACE
    job_spec["template"] = {
        "metadata": {"labels": labels},
        "spec": _pod_spec(source, options, secret),
    }
    spec: dict[str, Any] = {
        "schedule": _schedule(source),
        "timeZone": source.zone,
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": _deadline(source, options),
        "successfulJobsHistoryLimit": HISTORY_LIMIT,
        "failedJobsHistoryLimit": HISTORY_LIMIT,
        "suspend": not schedule.enabled,
        "jobTemplate": {
            "metadata": {"labels": labels, "annotations": annotations},
            "spec": job_spec,
        },
    }
    metadata: dict[str, Any] = {"name": name}
    if options.namespace:
        metadata["namespace"] = options.namespace
    metadata |= {"labels": labels, "annotations": annotations}
    document = {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": metadata, "spec": spec}
    keys = _secret_keys(source, options)
    header = [
        f"{describe(source)}",
        f"as a Kubernetes CronJob (1.27 or later): `dot schedule run {schedule.name}` in {options.image}.",
        f"Written by `dot schedule export {schedule.name} --to kubernetes`: export again after "
        "changing the schedule.",
        f"Secret {secret} holds {', '.join(keys)}; this file names them, never their values.",
    ]
    if schedule.overlap is Overlap.QUEUE:
        header.append(_QUEUE_NOTE)
    notes = (
        f"secret: kubectl create secret generic {secret} " + " ".join(_secret_arguments(keys)),
        f"install: kubectl apply -f {{dir}}/{name}.cronjob.yaml",
    )
    return Rendering((ExportedFile(f"{name}.cronjob.yaml", yaml_text(header, document)),), notes)


_QUEUE_NOTE = (
    "overlap queue: Kubernetes has no queue. concurrencyPolicy Forbid holds a firing back while "
    "the previous Job runs, and startingDeadlineSeconds (the queue's wait) lets it start once "
    "that Job ends; a third firing in that time is not kept."
)


def _check_options(options: KubernetesOptions) -> None:
    if not options.image.strip() or any(c.isspace() for c in options.image):
        raise ScheduleError(
            f"--image '{options.image}' is not an image reference",
            "name the image with dot in it: --image registry.example/datum-dot:0.1.0",
        )
    if (options.git_url is None) == (options.repo_dir is None):
        raise ScheduleError(
            "say where the pod finds the project: --git-url or --repo-dir, one of them",
            "--git-url https://git.example/shop.git clones it in an init container; "
            "--repo-dir /srv/repo names the repository inside the image",
        )
    if options.git_url is not None:
        parts = urlsplit(options.git_url)
        if parts.scheme in ("http", "https") and (parts.username or parts.password):
            raise ScheduleError(
                "--git-url holds credentials, which would be written into the CronJob",
                "give the URL without them and let the image's git find them (a credential "
                "helper or a deploy key mounted from a Secret)",
            )
    if options.repo_dir is not None and not options.repo_dir.startswith("/"):
        raise ScheduleError(
            f"--repo-dir '{options.repo_dir}' is not an absolute path",
            "name the repository's folder inside the image: --repo-dir /srv/repo",
        )


def _schedule(source: ExportSource) -> str:
    fields = source.fields
    words = list(fields.words)
    if fields.text.startswith("@"):
        return fields.text
    check_portable_days(fields, "Kubernetes")
    if re.search(r"(^|[^0-9])7([^0-9]|$)", words[4]):
        # Kubernetes' day of week is 0-6; cron's 7 is Sunday too.
        words[4] = compact(fields.weekdays)
    return " ".join(words)


def _deadline(source: ExportSource, options: KubernetesOptions) -> int:
    if options.starting_deadline is not None:
        return options.starting_deadline
    schedule = source.located.schedule
    if schedule.overlap is Overlap.QUEUE:
        return math.ceil(schedule.timeout or QUEUE_WAIT)
    return SKIP_DEADLINE


def _pod_spec(source: ExportSource, options: KubernetesOptions, secret: str) -> dict[str, Any]:
    repo = options.repo_dir or f"{WORKSPACE}/repo"
    folder = repo if source.folder == "." else f"{repo}/{source.folder}"
    mounts: list[dict[str, Any]] = [{"name": "state", "mountPath": STATE_DIR}]
    volumes: list[dict[str, Any]] = [{"name": "state", "emptyDir": {}}]
    if options.git_url is not None:
        mounts.append({"name": "workspace", "mountPath": WORKSPACE})
        volumes.append({"name": "workspace", "emptyDir": {}})
    if not options.profiles_in_repo:
        mounts.append({"name": "profiles", "mountPath": PROFILES_DIR, "readOnly": True})
        volumes.append({"name": "profiles", "secret": {
            "secretName": secret, "items": [{"key": "profiles.yml", "path": "profiles.yml"}],
        }})  # fmt: skip
    container = {
        "name": "dot",
        "image": options.image,
        "command": ["dot"],
        "args": ["schedule", "run", source.located.schedule.name],
        "workingDir": folder,
        "env": _env(source, options, secret),
        "volumeMounts": mounts,
    }
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "securityContext": {"runAsNonRoot": True, "runAsUser": USER_ID, "runAsGroup": USER_ID,
                            "fsGroup": USER_ID},
    }  # fmt: skip
    if options.git_url is not None:
        pod["initContainers"] = _clone(source, options, repo)
    pod["containers"] = [container]
    pod["volumes"] = volumes
    return pod


def _clone(source: ExportSource, options: KubernetesOptions, repo: str) -> list[dict[str, Any]]:
    schedule = source.located.schedule
    checkout = schedule.pinned_commit or schedule.spec.partition("@")[2] or "HEAD"
    mounts = [{"name": "workspace", "mountPath": WORKSPACE}]
    return [
        {"name": "clone", "image": options.image, "command": ["git"],
         "args": ["clone", "--quiet", "--no-checkout", "--", str(options.git_url), repo],
         "volumeMounts": mounts},
        {"name": "checkout", "image": options.image, "command": ["git"],
         "args": ["-C", repo, "checkout", "--quiet", "--detach", checkout, "--"],
         "volumeMounts": mounts},
    ]  # fmt: skip


def _env(source: ExportSource, options: KubernetesOptions, secret: str) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [
        {"name": DEFINITION_ENV, "value": encode_definition(source.definition)},
        {"name": "DATUM_HOME", "value": f"{STATE_DIR}/home"},
    ]
    if not options.profiles_in_repo:
        env.append({"name": "DBT_PROFILES_DIR", "value": PROFILES_DIR})
    env.append(_from_secret(DATABASE_URL_ENV, secret, optional=True))
    reserved = {e["name"] for e in env}
    env.extend(
        _from_secret(v.name, secret, optional=v.has_default)
        for v in source.variables
        if v.name not in reserved
    )
    return env


def _from_secret(name: str, secret: str, *, optional: bool) -> dict[str, Any]:
    ref: dict[str, Any] = {"name": secret, "key": name}
    if optional:
        ref["optional"] = True
    return {"name": name, "valueFrom": {"secretKeyRef": ref}}


def _secret_keys(source: ExportSource, options: KubernetesOptions) -> list[str]:
    keys = [] if options.profiles_in_repo else ["profiles.yml"]
    keys.extend(v.name for v in source.variables if v.name != DATABASE_URL_ENV)
    keys.append(f"optionally {DATABASE_URL_ENV} (a shared run history)")
    return keys


def _secret_arguments(keys: list[str]) -> list[str]:
    words = []
    for key in keys:
        if key == "profiles.yml":
            words.append("--from-file=profiles.yml=<your profiles.yml>")
        elif not key.startswith("optionally"):
            words.append(f"--from-literal={key}=...")
    return words


def _labels(source: ExportSource) -> dict[str, str]:
    schedule = source.located.schedule
    labels = {
        "app.kubernetes.io/name": "datum-dot",
        "app.kubernetes.io/managed-by": "datum-dot",
    }
    env = schedule.spec.partition("@")[0] or "default"
    for key, value in (
        ("project", source.located.project_id),
        ("schedule", schedule.name),
        ("environment", env),
        ("commit", schedule.pinned_commit),
    ):
        if value is not None and _LABEL_VALUE.fullmatch(value):
            labels[f"{_PREFIX}/{key}"] = value
    return labels


def _annotations(source: ExportSource) -> dict[str, str]:
    schedule = source.located.schedule
    annotations = {
        f"{_PREFIX}/project": source.located.project_id,
        f"{_PREFIX}/schedule": schedule.name,
        f"{_PREFIX}/spec": schedule.spec,
        f"{_PREFIX}/environment": schedule.spec.partition("@")[0] or "default",
        f"{_PREFIX}/cron": schedule.cron,
        f"{_PREFIX}/overlap": schedule.overlap.value,
    }
    if schedule.pinned_commit:
        annotations[f"{_PREFIX}/commit"] = schedule.pinned_commit
        annotations[f"{_PREFIX}/pinned-ref"] = schedule.pinned_ref or ""
    if schedule.overlap is Overlap.QUEUE:
        annotations[f"{_PREFIX}/overlap-note"] = _QUEUE_NOTE
    return annotations
