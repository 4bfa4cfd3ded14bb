-- The head commit of each CI job run, with the run's end (its deployment time).
-- Incremental (macros/refresh_horizon.sql): a run loaded again sets the horizon at or before its
-- end, so the runs from the horizon on are read again.
-- depends_on: {{ ref('int_refresh_loads') }}
{{ config(**horizon_config('sources', horizon_anchor('deployments'), 'deployment_id')) }}

{%- set since = horizon_start('sources') if is_incremental() else none %}

with runs as (
    select run_id, head_commit_hash, ended_at as deployed_at
    from {{ ref('stg_gearset_automation__ci_job_runs') }}
    where head_commit_hash is not null
)

select 'gearset_automation:' || run_id as deployment_id, head_commit_hash as sha, deployed_at
from runs
{%- if since %}
where {{ horizon_anchor('deployments') }} >= {{ since }}
{%- endif %}
