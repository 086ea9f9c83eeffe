{{
    config(
        materialized='incremental',
        unique_key='order_id',
        on_schema_change='append_new_columns'
    )
}}

-- One event row per order, carrying its latest status. Incremental runs only pick up
-- orders on or after the newest date already loaded; `--full-refresh` rebuilds it all.
select
    order_id,
    customer_id,
    'order_' || status as event_type,
    order_date as event_date,
    current_timestamp as loaded_at
from {{ ref('stg_orders') }}

{% if is_incremental() %}
where order_date >= (select coalesce(max(event_date), date '1900-01-01') from {{ this }})
{% endif %}
