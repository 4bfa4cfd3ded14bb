-- The revision each GitLab deployment released (for matching the same deployment across tools),
-- with the deployment's time.
-- Incremental (macros/refresh_horizon.sql): a deployment loaded again sets the horizon at or
-- before its time, so the revisions of the deployments from the horizon on are read again.
-- depends_on: {{ ref('int_refresh_loads') }}
{{ config(**horizon_config('sources', horizon_anchor('deployments'), 'deployment_id')) }}

{%- set since = horizon_start('sources') if is_incremental() else none %}

with deployments as (
    select deployment_id, sha, deployed_at
    from {{ ref('stg_gitlab__deployments') }}
    where sha is not null
)

select 'gitlab:' || deployment_id as deployment_id, sha, deployed_at
from deployments
{%- if since %}
where {{ horizon_anchor('deployments') }} >= {{ since }}
{%- endif %}
