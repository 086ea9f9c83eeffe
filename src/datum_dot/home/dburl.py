"""Which store keeps the run history: `DATUM_DATABASE_URL`, else `database.url` in config.yaml.

Unset, the history is SQLite under `$DATUM_HOME`, as it always was. Set, it is the PostgreSQL
database the URL names (a `postgresql://` URL, or a libpq `key=value` string such as
`service=datum`). A password never lives in config.yaml: `dot config set database.url` refuses a
URL holding one, and so does reading a config.yaml edited by hand to hold one. The password
comes from the environment (`PGPASSWORD`, or the whole URL in `DATUM_DATABASE_URL`), a `.pgpass`
file or a service file, which libpq reads itself.

Only the URL's text is looked at here: psycopg is imported only when a URL is set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from datum_dot.errors import ConfigError, HistoryError

URL_VARIABLE = "DATUM_DATABASE_URL"
CONFIG_KEY = "database.url"
PASSWORD_HINT = (
    "give the password through PGPASSWORD, ~/.pgpass or a service file (pg_service.conf), "
    f"or set the whole URL in the {URL_VARIABLE} environment variable instead"
)


@dataclass(frozen=True)
class DatabaseUrl:
    """A PostgreSQL connection string, and where it was set.

    Attributes:
        conninfo: What libpq takes (a URL or `key=value` pairs).
        source: Where it came from (`DATUM_DATABASE_URL`, or config.yaml's path).
    """

    conninfo: str
    source: str

    def where(self) -> str:
        """`host:port/database` for messages: never the user name or password."""
        parts = conninfo_parts(self.conninfo)
        host = parts.get("host") or os.environ.get("PGHOST") or "localhost"
        port = parts.get("port") or os.environ.get("PGPORT") or "5432"
        service = parts.get("service")
        name = parts.get("dbname") or ""
        shown = f"{host}:{port}" + (f"/{name}" if name else "")
        return f"service {service}" if service and "host" not in parts else shown


def conninfo_parts(conninfo: str) -> dict[str, str]:
    """The libpq keywords a connection string sets (`host`, `port`, `dbname`, `password`...).

    Parsed here, without psycopg, so that a command that never connects need not load it.
    """
    text = conninfo.strip()
    if text.startswith(("postgresql://", "postgres://")):
        split = urlsplit(text)
        parts: dict[str, str] = {}
        if split.hostname:
            parts["host"] = split.hostname
        try:
            port = split.port
        except ValueError:
            port = None
        if port:
            parts["port"] = str(port)
        if split.username:
            parts["user"] = split.username
        if split.password is not None:
            parts["password"] = split.password
        if split.path.strip("/"):
            parts["dbname"] = split.path.strip("/")
        for key, values in parse_qs(split.query).items():
            parts[key] = values[-1]
        return parts
    parts = {}
    for word in text.split():
        key, sep, value = word.partition("=")
        if sep:
            parts[key.strip()] = value.strip().strip("'")
    return parts


def check_not_secret(conninfo: str, *, where: str) -> None:
    """Refuse a connection string that holds a password, for a place that is not secret.

    Raises:
        ConfigError: It holds a password (the message never repeats it).
    """
    if not conninfo.strip():
        raise ConfigError(
            f"{CONFIG_KEY} in {where} is empty",
            "for example: dot config set database.url postgresql://dot@db.internal:5432/datum",
        )
    if not conninfo.strip().startswith(("postgresql://", "postgres://")) and "=" not in conninfo:
        raise ConfigError(
            f"{CONFIG_KEY} in {where} is not a PostgreSQL URL",
            "for example: dot config set database.url postgresql://dot@db.internal:5432/datum",
        )
    if "password" in conninfo_parts(conninfo):
        raise ConfigError(
            f"{CONFIG_KEY} in {where} holds a password, and config.yaml is no place for one",
            PASSWORD_HINT,
        )


def database_url(home: Path, environ: Mapping[str, str] | None = None) -> DatabaseUrl | None:
    """The PostgreSQL store's connection string, or None for SQLite under `home`.

    Args:
        home: `$DATUM_HOME` (its config.yaml may set `database.url`).
        environ: The environment (default: this process's).

    Raises:
        ConfigError: config.yaml is unusable, or its `database.url` holds a password.
        HistoryError: `DATUM_DATABASE_URL` is set to something that is not a connection string.
    """
    env = os.environ if environ is None else environ
    value = env.get(URL_VARIABLE, "").strip()
    if value:
        if not value.startswith(("postgresql://", "postgres://")) and "=" not in value:
            raise HistoryError(
                f"{URL_VARIABLE} is not a PostgreSQL URL: it starts with {value[:12]!r}",
                "for example: DATUM_DATABASE_URL=postgresql://dot@db.internal:5432/datum, "
                "or unset it to keep the history in SQLite under $DATUM_HOME",
            )
        return DatabaseUrl(value, URL_VARIABLE)
    config = home / "config.yaml"
    try:
        if "database" not in config.read_text(encoding="utf-8", errors="replace"):
            return None  # no need to parse (and judge) a file that cannot set it
    except OSError:
        return None
    # lazy: config.yaml is parsed only when there is one
    from datum_dot.home.userconfig import load_user_config

    url = load_user_config(home).database.url
    if url is None:
        return None
    check_not_secret(url, where=str(config))
    return DatabaseUrl(url, str(config))
