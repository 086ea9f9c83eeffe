{#- Run with: dot run-operation grant_select prod -- --args '{role: reporter}'
    DuckDB has no roles, so this macro only says what it would grant. -#}
{% macro grant_select(role='reporter') %}
  {% do log("would grant select on schema " ~ target.schema ~ " to " ~ role, info=True) %}
{% endmacro %}
