"""The project's configuration files: dot's environments and vars, and dbt's profiles.yml.

- `environments`: `dot_environments.yml` and its user override; `variables`: `dot_vars.yml`
  and `--vars`; `models` and `schema`: their pydantic models and JSON schemas.
- `profiles`: find and read profiles.yml and dbt_project.yml's profile, as dbt does.
- `yamlfile`: YAML loading with line numbers for error messages.

May import: `errors` only.
"""
