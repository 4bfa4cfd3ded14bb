-- CI job runs as deployments: a deployment run to the job's environment (configuration says
-- which: the API cannot); a validation run deploys nothing and is kept as a test deployment.
-- Incremental (macros/refresh_horizon.sql): a run loaded again sets the horizon at or before its
-- end, so the runs from the horizon on are rebuilt and the earlier ones kept.
-- depends_on: {{ ref('int_refresh_loads') }}
{{ config(**horizon_config('sources', horizon_anchor('deployments'), 'deployment_id')) }}

{%- set since = horizon_start('sources') if is_incremental() else none %}

with runs as (
    select
        'gearset_automation:' || run_id as deployment_id,
        'gearset_automation' as source,
        run_id as source_deployment_id,
        {{ service_of('gearset_automation', 'job_id') }} as service,
        environment,
        coalesce(lower(environment) like 'prod%', false) as is_production,
        case when deployment_succeeded then 'succeeded' else 'failed' end as status,
        ended_at as deployed_at,
        head_commit_hash as revision,
        coalesce(job_type = 'Validation', false) as is_test,
        false as is_empty,
        false as is_fix,
        false as is_rollback,
        false as is_failure_reported
    from {{ ref('stg_gearset_automation__ci_job_runs') }}
)

select * from runs
{%- if since %}
where {{ horizon_anchor('deployments') }} >= {{ since }}
{%- endif %}
