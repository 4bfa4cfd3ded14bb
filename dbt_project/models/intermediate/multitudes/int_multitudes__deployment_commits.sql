-- One row per commit SHA a Multitudes deployment lists, with the deployment's time.
-- Incremental (macros/refresh_horizon.sql): a deployment loaded again sets the horizon at or
-- before its time, so the commits of the deployments from the horizon on are listed again.
-- depends_on: {{ ref('int_refresh_loads') }}
{{ config(**horizon_config('sources', horizon_anchor('deployments'), 'deployment_id')) }}

{%- set since = horizon_start('sources') if is_incremental() else none %}

with deployments as (
    select deployment_id, commit_shas, deployed_at from {{ ref('stg_multitudes__deployments') }}
    {%- if since %}
    where {{ horizon_anchor('deployments') }} >= {{ since }}
    {%- endif %}
)

select 'multitudes:' || deployment_id as deployment_id, unnest(commit_shas) as sha, deployed_at
from deployments
