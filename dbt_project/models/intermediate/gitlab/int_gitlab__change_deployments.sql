-- The merge requests GitLab links to each deployment (explicit links), with the deployment's time.
-- GitLab lists a deployment's merge requests under the deployment, so every link's deployment is
-- loaded (a link without one could not reach a unified deployment anyway).
-- Incremental (macros/refresh_horizon.sql): loading a deployment's links sets the horizon at or
-- before the deployment's time, so the links of the deployments from the horizon on are read
-- again; keyed by deployment, so a link GitLab no longer lists goes too.
-- depends_on: {{ ref('int_refresh_loads') }}
{{ config(**horizon_config('sources', horizon_anchor('deployments'), 'deployment_id')) }}

{%- set since = horizon_start('sources') if is_incremental() else none %}

with deployments as (
    select deployment_id, deployed_at from {{ ref('stg_gitlab__deployments') }}
    {%- if since %}
    where {{ horizon_anchor('deployments') }} >= {{ since }}
    {%- endif %}
)

select distinct
    'gitlab:' || links.project_id || ':' || links.merge_request_iid as change_id,
    'gitlab:' || links.deployment_id as deployment_id,
    'explicit' as link_method,
    deployments.deployed_at
from {{ ref('stg_gitlab__deployment_merge_requests') }} as links
inner join deployments on links.deployment_id = deployments.deployment_id
