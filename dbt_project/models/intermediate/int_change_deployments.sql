-- Links between changes and deployments: `explicit` where a source lists the changes of a
-- deployment, `commit_range` where a deployment of the same service lists the change's merge SHA.
-- Incremental (macros/refresh_horizon.sql): a link is new or changed only when its change or its
-- deployment was loaded again, so the links whose deployment and merge both precede the horizon
-- are kept; `linked_at`, the later of the two, anchors them.
-- depends_on: {{ ref('int_refresh_horizon') }}
{{ config(**horizon_config('loads', 'linked_at', ['change_id', 'deployment_id'])) }}

{%- set since = horizon_start('loads') if is_incremental() else none %}

with deployments as (
    select deployment_id, service, deployed_at from {{ ref('int_deployments_unioned') }}
),

changes as (
    select change_id, service, merge_sha, merged_at from {{ ref('int_changes_unioned') }}
),

{#- An incremental build links the deployments and changes of the horizon, each to the other's
    whole union. #}
recent_deployments as (
    select * from deployments {% if since %}where deployed_at >= {{ since }}{% endif %}
),

recent_changes as (
    select * from changes {% if since %}where merged_at >= {{ since }}{% endif %}
),

explicit_links as (
    select links.change_id, links.deployment_id, links.link_method
    from ({{ union_sources('change_deployments', {'change_id': 'varchar', 'deployment_id': 'varchar', 'link_method': 'varchar'}) }}) as links
    {%- if since %}
    where links.deployment_id in (select deployment_id from recent_deployments)
        or links.change_id in (select change_id from recent_changes)
    {%- endif %}
),

commit_links as (
    {%- for changes_side, deployments_side in ([('changes', 'recent_deployments'), ('recent_changes', 'deployments')] if since else [('changes', 'deployments')]) %}
    select
        changes.change_id,
        deployments.deployment_id,
        'commit_range' as link_method
    from {{ changes_side }} as changes
    inner join {{ ref('int_deployment_commits') }} as commits on changes.merge_sha = commits.sha
    inner join {{ deployments_side }} as deployments
        on commits.deployment_id = deployments.deployment_id and changes.service = deployments.service
    {{- '\n    union' if not loop.last }}
    {%- endfor %}
),

links as (
    select * from explicit_links
    union all
    select distinct * from commit_links
    where not exists (
        select 1 from explicit_links
        where explicit_links.change_id = commit_links.change_id
            and explicit_links.deployment_id = commit_links.deployment_id
    )
)

select
    links.change_id,
    links.deployment_id,
    links.link_method,
    greatest(deployments.deployed_at, changes.merged_at) as linked_at
from links
left join deployments on links.deployment_id = deployments.deployment_id
left join changes on links.change_id = changes.change_id
