"""JSON Schemas of `dot_environments.yml` and `dot_vars.yml`, generated from the pydantic models.

The generated schemas are shipped in the package (`datum_dot/schemas/*.json`) so an editor can
validate and complete the files; a test keeps the shipped files equal to freshly generated
ones. Two adjustments make the schema describe the file as written rather than the model:
named environments are keys of `environment:` itself (the model collects them under `named`),
and any other key of an environment block is a dbt flag with a value. Which flags exist depends
on the installed dbt, so the schema checks only their spelling; dot checks the names.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from datum_dot.config.models import EnvironmentsFile, VarsFile

DRAFT = "https://json-schema.org/draft/2020-12/schema"
SCHEMAS: dict[str, tuple[str, str, type[BaseModel]]] = {
    "environments": ("dot_environments.schema.json", "dot_environments.yml", EnvironmentsFile),
    "vars": ("dot_vars.schema.json", "dot_vars.yml", VarsFile),
}
_SCALAR = [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]
_FLAG_VALUE = {
    "description": "a dbt flag: `key: value` -> `--key value`, `true` -> `--key`, `false` -> "
    "left out; a key that no dbt command takes is refused",
    "anyOf": [*_SCALAR, {"type": "array", "items": {"anyOf": _SCALAR}}, {"type": "object"}],
}

_FLAG_NAME = "^[a-z][a-z0-9_-]*$"


def generate_schema(name: str) -> dict[str, Any]:
    """The JSON Schema of one file (`environments` or `vars`)."""
    file_name, document, model = SCHEMAS[name]
    schema = model.model_json_schema()
    defs = schema.get("$defs", {})
    if "EnvironmentSection" in defs:
        section = defs["EnvironmentSection"]
        named = section["properties"].pop("named")
        section["additionalProperties"] = {
            "anyOf": [named["additionalProperties"], {"type": "null"}]
        }
    if "EnvironmentBlock" in defs:
        defs["EnvironmentBlock"]["additionalProperties"] = _FLAG_VALUE
        # dbt's long options are lower-case words joined by `-`; dot also takes `_`.
        defs["EnvironmentBlock"]["propertyNames"] = {"pattern": _FLAG_NAME}
    return {
        "$schema": DRAFT,
        "$id": f"https://datum-dot.invalid/schemas/{file_name}",
        **schema,
        "title": document,
    }


def schema_text(name: str) -> str:
    """The schema as the shipped file holds it (stable key order, trailing newline)."""
    return json.dumps(generate_schema(name), indent=2, ensure_ascii=False) + "\n"


def shipped_schema(name: str) -> Path:
    """The path of the schema file installed with the package."""
    file_name = SCHEMAS[name][0]
    return Path(str(resources.files("datum_dot") / "schemas" / file_name))


def write_schemas(folder: Path, names: list[str]) -> list[Path]:
    """Write freshly generated schemas into `folder`.

    Raises:
        OSError: The folder cannot be written.
    """
    written = []
    for name in names:
        path = folder / SCHEMAS[name][0]
        path.write_text(schema_text(name), encoding="utf-8")
        written.append(path)
    return written
