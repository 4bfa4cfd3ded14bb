-- One row per change (merged pull/merge request), linked to the first counted deployment that
-- shipped it, with its lead time and the reason it is left out of lead time, if any.
with links as (
    select * from {{ ref('int_gearset__change_deployments') }}
),

deployments as (
    select * from {{ ref('int_deployments') }}
),

changes as (
    select
        change_id,
        any_value(source) as source,
        any_value(source_change_id) as source_change_id,
        any_value(title) as title,
        min(opened_at) as opened_at,
        min(merged_at) as merged_at,
        min(first_commit_at) as first_commit_at,
        any_value(merge_sha) as merge_sha
    from links
    group by change_id
),

shipped as (
    select
        links.change_id,
        arg_min(
            deployments.deployment_id, (deployments.deployed_at, deployments.deployment_id)
        ) as deployment_id
    from links
    inner join deployments
        on links.deployment_id = deployments.deployment_id and deployments.is_counted
    group by links.change_id
),

linked as (
    select
        changes.*,
        coalesce(deployments.service, any_service.service) as service,
        coalesce(deployments.team, any_service.team) as team,
        deployments.environment,
        shipped.deployment_id,
        deployments.deployed_at,
        case when shipped.deployment_id is not null then 'explicit' else 'none' end as link_method,
        coalesce(deployments.is_first_counted_in_environment, false) as is_first_deployment_backlog
    from changes
    left join shipped on changes.change_id = shipped.change_id
    left join deployments on shipped.deployment_id = deployments.deployment_id
    left join (
        select links.change_id, any_value(d.service) as service, any_value(d.team) as team
        from links inner join deployments as d on links.deployment_id = d.deployment_id
        group by links.change_id
    ) as any_service on changes.change_id = any_service.change_id
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
