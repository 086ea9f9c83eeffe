-- Ephemeral: inlined as a CTE into the models that ref it, never built in the warehouse.
select
    order_id,
    count(*) as payment_count,
    sum(case when payment_method = 'coupon' then amount else 0 end) as coupon_amount,
    sum(amount) as amount
from {{ ref('stg_payments') }}
group by order_id
