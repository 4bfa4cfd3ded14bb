-- Each (feature pull request, deployment) pair Gearset lists: the explicit link between a
-- change and every deployment that promoted it. A pair is unique without `distinct` (which sorted
-- 2.9M rows at the target scale): staging tests (deployment, pull request) unique, and a
-- deployment belongs to one pipeline.
-- Incremental (macros/refresh_horizon.sql): a link is listed in its deployment's report, so it
-- changes only when that deployment's rows are loaded again, which sets the horizon at or before
-- the deployment's date (`deployed_at` anchors the link).
-- depends_on: {{ ref('int_refresh_loads') }}
{{ config(**horizon_config('sources', 'deployed_at', ['change_id', 'deployment_id'])) }}

{%- set since = horizon_start('sources') if is_incremental() else none %}

with deployments as (
    select * from {{ ref('stg_gearset__deployments') }}
    {%- if since %}
    where deployed_at >= {{ since }}
    {%- endif %}
),

pull_requests as (
    select * from {{ ref('stg_gearset__deployment_pull_requests') }}
    {%- if since %}
    where deployment_id in (select deployment_id from deployments)
    {%- endif %}
)

select
    'gearset:' || deployments.pipeline_id || ':' || pull_requests.pull_request_number as change_id,
    'gearset:' || pull_requests.deployment_id as deployment_id,
    'explicit' as link_method,
    deployments.deployed_at
from pull_requests
inner join deployments on pull_requests.deployment_id = deployments.deployment_id
where pull_requests.merged_at is not null
