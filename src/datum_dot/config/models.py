"""Pydantic models of the project's dot configuration files.

These validate what the user wrote; `environments.py` merges the validated files into one
resolved `Environment`. The JSON Schema of these models is what editors validate against.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

Scalar = str | int | float | bool
FlagValue = Scalar | list[Scalar] | dict[str, Any]

# Keys of an environment block that configure the tool rather than name a dbt flag.
TOOL_KEYS = frozenset({"vars", "isolation", "runtime", "runtimes"})


class IsolationConfig(BaseModel):
    """How isolated builds name their folders and schemas (project-wide)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    hash_length: int = Field(default=8, ge=4, le=40)
    schema_template: str = "{schema}_{short_hash}"

    @model_validator(mode="after")
    def _template_has_hash(self) -> IsolationConfig:
        if "{short_hash}" not in self.schema_template:
            raise ValueError(
                "schema_template must contain {short_hash}, or two commits would share a schema"
            )
        try:
            self.schema_template.format(schema="s", short_hash="h", env="e", ref_slug="r")
        except (KeyError, IndexError, ValueError) as e:
            raise ValueError(
                f"schema_template may only use {{schema}}, {{short_hash}}, {{env}}, {{ref_slug}}: {e}"
            ) from e
        return self


class EnvironmentBlock(BaseModel):
    """One environment (or `all`): dbt CLI flags plus `vars` and tool settings.

    Any key that is not a tool key is a dbt CLI flag: `key: value` becomes `--key value`,
    `key: true` becomes `--key`, and `key: false` is left out.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    vars: dict[str, Any] = Field(default_factory=dict)
    isolation: IsolationConfig | None = None
    runtime: str | None = None
    runtimes: dict[str, dict[str, Any]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _flags_have_values(self) -> EnvironmentBlock:
        for key, value in (self.model_extra or {}).items():
            if value is None:
                raise ValueError(
                    f"dbt flag '{key}' has no value (write `{key}: true` for a switch)"
                )
            if isinstance(value, list) and not all(
                isinstance(item, str | int | float | bool) for item in value
            ):
                raise ValueError(f"dbt flag '{key}' must be a value or a list of values")
        return self

    def flags(self) -> dict[str, FlagValue]:
        """Return the dbt flags of this block, keys in kebab-case as dbt spells them."""
        return {key.replace("_", "-"): value for key, value in (self.model_extra or {}).items()}


class EnvironmentSection(BaseModel):
    """The top-level `environment:` mapping: `default`, `all` and the named environments."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    RESERVED: ClassVar[tuple[str, ...]] = ("default", "all")

    default: str | None = None
    all: EnvironmentBlock = Field(default_factory=EnvironmentBlock)
    named: dict[str, EnvironmentBlock] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _collect_named(cls, data: Any) -> Any:
        if data is None:
            return {}
        if not isinstance(data, dict):
            return data
        out: dict[str, Any] = {k: v for k, v in data.items() if k in cls.RESERVED}
        out["named"] = {
            str(k): ({} if v is None else v) for k, v in data.items() if k not in cls.RESERVED
        }
        return out


class EnvironmentsFile(BaseModel):
    """`dot_environments.yml` and `dot_environments.user.yml`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    environment: EnvironmentSection = Field(default_factory=EnvironmentSection)
    isolation: IsolationConfig | None = None


class VarSpec(BaseModel):
    """The declaration of one variable in `dot_vars.yml`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    description: str = ""
    values: list[Any] | None = None
    strict: bool = False
    required: bool = False

    @model_validator(mode="after")
    def _strict_needs_values(self) -> VarSpec:
        if self.strict and not self.values:
            raise ValueError("strict: true needs a non-empty `values` list")
        return self


class VarsFile(BaseModel):
    """`dot_vars.yml`: variable declarations (metadata and validation rules)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vars: dict[str, VarSpec] = Field(default_factory=dict)
