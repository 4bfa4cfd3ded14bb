select
    id as bug_id,
    deployment_id,
    title,
    severity,
    {{ utc('identified_at') }} as detected_at,
    {{ utc('resolved_at') }} as resolved_at
from {{ source('gearset', 'reported_bugs') }}
qualify row_number() over (partition by id order by _dlt_load_id desc) = 1
