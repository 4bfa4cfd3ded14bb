-- One row per change (merged pull/merge request), linked to the first counted deployment that
-- shipped it, with its lead time and the reason it is left out of lead time, if any.
with links as (
    select * from {{ ref('int_change_deployments') }}
),

deployments as (
    select * from {{ ref('int_deployments') }}
),

changes as (
    select * from {{ ref('int_changes_unioned') }}
),

teams as (
    {{ service_teams_relation() }}
),

shipped as (
    select
        links.change_id,
        arg_min(
            deployments.deployment_id, (deployments.deployed_at, links.link_method, deployments.deployment_id)
        ) as deployment_id,
        arg_min(
            links.link_method, (deployments.deployed_at, links.link_method, deployments.deployment_id)
        ) as link_method
    from links
    inner join deployments
        on links.deployment_id = deployments.deployment_id and deployments.is_counted
    group by links.change_id
),

linked as (
    select
        changes.*,
        coalesce(teams.team, 'unassigned') as team,
        deployments.environment,
        shipped.deployment_id,
        deployments.deployed_at,
        coalesce(shipped.link_method, 'none') as link_method,
        coalesce(deployments.is_first_counted_in_environment, false) as is_first_deployment_backlog
    from changes
    left join shipped on changes.change_id = shipped.change_id
    left join deployments on shipped.deployment_id = deployments.deployment_id
    left join teams on changes.service = teams.service
),

timed as (
    select
        *,
        epoch(deployed_at) - epoch(first_commit_at) as raw_lead_time_seconds,
        case when not is_first_deployment_backlog then {{ seconds_between('first_commit_at', 'deployed_at') }} end
            as lead_time_seconds,
        case when not is_first_deployment_backlog then {{ seconds_between('merged_at', 'deployed_at') }} end
            as merge_to_deploy_seconds,
        case when not is_first_deployment_backlog then {{ seconds_between('opened_at', 'deployed_at') }} end
            as open_to_deploy_seconds
    from linked
)

select
    * exclude (raw_lead_time_seconds),
    case
        when deployment_id is null then 'change_not_deployed'
        when is_first_deployment_backlog then 'first_deployment_backlog'
        when first_commit_at is null then 'change_without_first_commit'
        when raw_lead_time_seconds < 0 then 'negative_duration'
    end as lead_time_exclusion_reason
from timed
