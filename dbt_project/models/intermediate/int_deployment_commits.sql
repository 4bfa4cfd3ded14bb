-- Commit SHAs each deployment is known to have released (revision, or the SHAs a tool lists),
-- with the deployment's time.
-- Incremental (macros/refresh_horizon.sql): the per-source models keep the commits of the
-- deployments before the horizon as they were, so only those from the horizon on are read again.
-- depends_on: {{ ref('int_refresh_loads') }}
{{ config(**horizon_config('sources', horizon_anchor('deployments'), 'deployment_id')) }}

{%- set since = horizon_start('sources') if is_incremental() else none %}

select distinct * from (
    {{ union_sources('deployment_commits', {'deployment_id': 'varchar', 'sha': 'varchar', 'deployed_at': 'timestamp'}) }}
) as commits
{%- if since %}
where {{ horizon_anchor('deployments') }} >= {{ since }}
{%- endif %}
