with source as (

    select * from {{ ref('raw_payments') }}

)

select
    id as payment_id,
    order_id,
    payment_method,
    amount_cents,
    {{ dot_utils.cents_to_dollars('amount_cents') }} as amount
from source
