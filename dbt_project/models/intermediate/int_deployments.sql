-- Every deployment of every source, with team, whether it counts, and why not.
with unioned as (
    select * from {{ ref('int_gearset__deployments') }}
),

teams as (
    {{ service_teams_relation() }}
),

classified as (
    select
        unioned.*,
        coalesce(teams.team, 'unassigned') as team,
        case
            when unioned.is_test then 'test_deployment'
            when unioned.is_empty then 'empty_deployment'
            when not unioned.is_production then 'not_production'
            when unioned.status not in ('succeeded', 'partially_succeeded') then 'failed_status'
        end as exclusion_reason
    from unioned
    left join teams on unioned.service = teams.service
)

select
    *,
    exclusion_reason is null as is_counted,
    exclusion_reason is null and row_number() over (
        partition by service, environment, exclusion_reason is null
        order by deployed_at, deployment_id
    ) = 1 as is_first_counted_in_environment
from classified
