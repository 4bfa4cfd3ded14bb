select
    run_id,
    source,
    {{ utc('started_at') }} as started_at,
    {{ utc('finished_at') }} as finished_at,
    status,
    error
from {{ source('dora_ops', 'source_runs') }}
