-- One row per deployment of every source: the drill-down behind deployment frequency.
select
    deployment_id,
    source,
    source_deployment_id,
    service,
    team,
    environment,
    is_production,
    status,
    deployed_at,
    revision,
    is_test,
    is_empty,
    is_fix,
    is_rollback,
    is_failure_reported,
    duplicate_of,
    is_counted,
    exclusion_reason,
    is_first_counted_in_environment
from {{ ref('int_deployments') }}
