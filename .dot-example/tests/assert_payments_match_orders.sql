-- Every dollar paid must be accounted for in the orders mart, order by order.
-- Returns the offending orders; the test passes when it returns no rows.
with paid as (

    select order_id, sum(amount) as paid_amount
    from {{ ref('stg_payments') }}
    group by order_id

)

select
    orders.order_id,
    orders.amount,
    paid.paid_amount
from {{ ref('orders') }} as orders
full outer join paid on orders.order_id = paid.order_id
where orders.order_id is null
    or coalesce(paid.paid_amount, 0) <> orders.amount
