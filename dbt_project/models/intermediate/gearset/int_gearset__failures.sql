-- Bugs Gearset records against the production deployment that caused them (explicit link).
select
    'gearset:' || bugs.bug_id as failure_id,
    'gearset' as source,
    bugs.bug_id as source_failure_id,
    bugs.title,
    bugs.severity,
    bugs.detected_at,
    bugs.resolved_at,
    'gearset:' || bugs.deployment_id as caused_by_deployment_id,
    cast(null as varchar) as fixed_by_deployment_id,
    {{ service_of('gearset', 'deployments.pipeline_id') }} as source_service
from {{ ref('stg_gearset__reported_bugs') }} as bugs
left join {{ ref('stg_gearset__deployments') }} as deployments on bugs.deployment_id = deployments.deployment_id
