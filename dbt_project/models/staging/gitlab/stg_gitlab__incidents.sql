select
    id as incident_id,
    iid as incident_iid,
    project_id,
    title,
    state,
    severity,
    {{ utc('created_at') }} as detected_at,
    {{ utc('closed_at') }} as resolved_at
from {{ source('gitlab', 'incidents') }} as incidents
