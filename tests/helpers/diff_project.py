"""The fixture project of the `dot diff` tests: two commits where one model gains a column,
one loses a row, one changes a value, one is added and one removed (DuckDB or PostgreSQL)."""

from __future__ import annotations

DUCKDB_PROFILE = """\
shop:
  target: prod
  outputs:
    prod:
      type: duckdb
      path: "{{ env_var('DIFF_DUCKDB') }}"
      schema: analytics
      threads: 1
    elsewhere:
      type: duckdb
      path: "{{ env_var('DIFF_DUCKDB_OTHER', 'other.duckdb') }}"
      schema: analytics
      threads: 1
"""

POSTGRES_PROFILE = """\
shop:
  target: prod
  outputs:
    prod:
      type: postgres
      host: 127.0.0.1
      port: "{{ env_var('PGPORT_TEST') | int }}"
      user: postgres
      password: "{{ env_var('DBT_PG_PASSWORD') }}"
      dbname: shop
      schema: analytics
      threads: 1
"""

COMMON = {
    "dbt_project.yml": """\
name: shop
version: "1.0.0"
config-version: 2
profile: shop
model-paths: ["models"]
models:
  shop:
    +materialized: table
""",
    "dot_environments.yml": "environment:\n  default: prod\n  prod:\n    target: prod\n"
    "  other:\n    target: elsewhere\n",
    "models/schema.yml": """\
version: 2
models:
  - name: customers
    columns:
      - name: customer_id
        data_tests: [unique]
  - name: orders
    columns:
      - name: order_id
        data_tests: [unique]
  - name: payments
    columns:
      - name: payment_id
        data_tests: [unique]
""",
    "models/payments.sql": "select 1 as payment_id, 10 as amount union all "
    "select 2 as payment_id, 20 as amount union all select 3 as payment_id, 30 as amount\n",
    "models/old_model.sql": "select 1 as x\n",
    # no key: compared as whole rows
    "models/typed.sql": "select 1 as id, '5' as score\n",
}

V1 = {
    **COMMON,
    "models/customers.sql": "select 1 as customer_id, 'Ada' as name union all "
    "select 2 as customer_id, 'Grace' as name\n",
    "models/orders.sql": "select 101 as order_id, 1 as customer_id union all "
    "select 102 as order_id, 2 as customer_id union all select 103 as order_id, 2 as customer_id\n",
}

V2_CHANGES = {
    # gains a column
    "models/customers.sql": "select 1 as customer_id, 'Ada' as name, 'uk' as country union all "
    "select 2 as customer_id, 'Grace' as name, 'us' as country\n",
    # loses a row
    "models/orders.sql": "select 101 as order_id, 1 as customer_id union all "
    "select 102 as order_id, 2 as customer_id\n",
    # changes a value
    "models/payments.sql": "select 1 as payment_id, 10 as amount union all "
    "select 2 as payment_id, 25 as amount union all select 3 as payment_id, 30 as amount\n",
    # re-typed: text to integer, the same values (compared as text)
    "models/typed.sql": "select 1 as id, 5 as score\n",
    # added
    "models/new_model.sql": "select 1 as y\n",
}
V2_REMOVED = ("models/old_model.sql",)
