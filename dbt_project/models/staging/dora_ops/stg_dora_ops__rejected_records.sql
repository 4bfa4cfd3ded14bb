select
    source,
    resource,
    record_key,
    field,
    problem,
    payload,
    service_key,
    run_id,
    {{ utc('seen_at') }} as seen_at
from {{ source('dora_ops', 'rejected_records') }}
