-- GitLab incidents. GitLab records no causing deployment: int_failures links them by window.
select
    'gitlab:' || incidents.incident_id as failure_id,
    'gitlab' as source,
    cast(incidents.incident_id as varchar) as source_failure_id,
    incidents.title,
    incidents.severity,
    incidents.detected_at,
    incidents.resolved_at,
    cast(null as varchar) as caused_by_deployment_id,
    cast(null as varchar) as fixed_by_deployment_id,
    {{ service_of('gitlab', 'cast(incidents.project_id as varchar)') }} as source_service
from {{ ref('stg_gitlab__incidents') }} as incidents
