select
    id as incident_id,
    iid as incident_iid,
    project_id,
    title,
    state,
    severity,
    {{ utc('created_at') }} as detected_at,
    {{ utc('closed_at') }} as resolved_at
from {{ latest_rows(source('gitlab', 'incidents'), 'id') }} as incidents
