with orders as (

    select * from {{ ref('stg_orders') }}

),

payments as (

    select * from {{ ref('int_order_payments') }}

)

select
    orders.order_id,
    orders.customer_id,
    orders.order_date,
    orders.status,
    coalesce(payments.payment_count, 0) as payment_count,
    coalesce(payments.coupon_amount, 0) as coupon_amount,
    coalesce(payments.amount, 0) as amount,
    -- Vars: the defaults keep a bare `dbt build` valid; dot environments override them.
    {{ var('sample_rate', 100) }} as sample_rate,
    (orders.order_id % 100) < {{ var('sample_rate', 100) }} as is_sampled,
    case
        when {{ var('feature_flag', false) }} then orders.status in ('return_pending', 'returned')
        else false
    end as is_flagged_return
from orders
left join payments on orders.order_id = payments.order_id
