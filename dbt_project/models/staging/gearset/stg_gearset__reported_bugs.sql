select
    id as bug_id,
    deployment_id,
    title,
    severity,
    {{ utc('identified_at') }} as detected_at,
    {{ utc('resolved_at') }} as resolved_at
from {{ source('gearset', 'reported_bugs') }} as reported_bugs
