-- The loads since the last build and the horizon they set (one row; see
-- macros/refresh_horizon.sql): every deployment, change, link and failure whose times all fall
-- before the horizon is what the last build saw, so the models built on it keep those rows and
-- rebuild the rest. The per-source models build on this row; the unified ones on
-- `int_refresh_horizon`, which adds failure tracking (read from those per-source models).
--
-- The horizon is the earliest time on any raw record that dlt loaded since the last build (a
-- record's own times, its deployment's, and for Multitudes the records it may supersede), less the
-- failure window (a failure links to the deployments of the days before it) and the match
-- tolerance (a deployment is matched with another tool's within it). Everything is rebuilt on the
-- first build, when the configuration, the services, their environments or the models' code
-- changed, and every `full_rebuild_days` days whatever happens.
{{ config(materialized='table') }}

{%- set state = refresh_state_relation() %}
{%- set sources = var('dora_sources') %}
{%- set source_models = horizon_models(['sources']) %}
{%- set all_models = horizon_models(['sources', 'loads']) %}
{%- set checksums = [] %}
{%- if execute %}
    {%- for node in graph.nodes.values() | sort(attribute='unique_id') if node.resource_type == 'model' %}
        {%- do checksums.append(node.name ~ '=' ~ node.checksum.checksum) %}
    {%- endfor %}
{%- endif %}
{%- set configuration = tojson({
    'sources': sources,
    'deployment_match_tolerance_seconds': var('deployment_match_tolerance_seconds'),
    'failure_window_days': var('failure_window_days'),
    'failure_severity_threshold': var('failure_severity_threshold'),
    'service_teams': var('service_teams', {}),
    'service_failure_tracking': var('service_failure_tracking', {}),
    'service_identifiers': var('service_identifiers', []),
    'models': checksums | join(','),
}, sort_keys=true) %}


with latest_state as (
    select * from {{ latest_refresh_state() }} as latest_state
),

previous as (
    select
        (select count(*) from latest_state where model in ({{ quoted_list(all_models) }})) as models_with_state,
        (select min(loaded_through) from latest_state where model in ({{ quoted_list(all_models) }}))
            as loaded_through,
        -- The per-source models record this row's fingerprint (the unified ones another).
        (select count(distinct fingerprint) from latest_state where model in ({{ quoted_list(source_models) }}))
            as fingerprints,
        (select min(fingerprint) from latest_state where model in ({{ quoted_list(source_models) }}))
            as fingerprint
),

last_full as (
    select min(built_at) as built_at from (
        select model, max(built_at) as built_at from {{ state }}
        where is_full and model in ({{ quoted_list(all_models) }})
        group by model
    ) as per_model
),

dimensions as (
    select 'int_service_keys' as relation, cast(service_keys as varchar) as row_text
    from {{ ref('int_service_keys') }} as service_keys
    {%- if 'gearset' in sources %}
    union all
    select 'stg_gearset__environments', cast(environments as varchar)
    from {{ ref('stg_gearset__environments') }} as environments
    {%- endif %}
    {%- if 'gitlab' in sources %}
    union all
    select 'stg_gitlab__environments', cast(environments as varchar)
    from {{ ref('stg_gitlab__environments') }} as environments
    {%- endif %}
),

current_state as (
    select
        (select max(inserted_at) from (
            {%- for source_name in sources %}
            select max(inserted_at) as inserted_at from {{ dlt_loads(source_name) }} as loads where status = 0
            {{- '\n            union all' if not loop.last }}
            {%- endfor %}
        ) as loads) as loaded_through,
        md5('{{ configuration | replace("'", "''") }}' || coalesce((
            select {{ dbt.listagg('relation || row_text', "'|'", "order by relation, row_text") }} from dimensions
        ), '')) as fingerprint
),

new_times (relation, earliest) as (
    select cast(null as {{ dbt.type_string() }}), cast(null as timestamp) where false
    {%- if 'gearset' in sources %}
    union all
    select 'gearset.deployments', {{ utc('deployments.date') }}
    from {{ changed_records('gearset', 'deployments') }} as deployments
    union all
    select 'gearset.deployment_pull_requests', least(
        {{ utc('pull_requests.created_at') }}, {{ utc('pull_requests.merged_at') }},
        {{ utc('pull_requests.first_commit_date') }}, {{ utc('deployments.date') }})
    from {{ changed_records('gearset', 'deployment_pull_requests') }} as pull_requests
    left join {{ source('gearset', 'deployments') }} as deployments on pull_requests.deployment_id = deployments.id
    union all
    select 'gearset.reported_bugs', least({{ utc('bugs.identified_at') }}, {{ utc('bugs.resolved_at') }}, {{ utc('deployments.date') }})
    from {{ changed_records('gearset', 'reported_bugs') }} as bugs
    left join {{ source('gearset', 'deployments') }} as deployments on bugs.deployment_id = deployments.id
    {%- endif %}
    {%- if 'gitlab' in sources %}
    union all
    select 'gitlab.deployments', least({{ utc('created_at') }}, {{ utc('updated_at') }}, {{ utc('finished_at') }})
    from {{ changed_records('gitlab', 'deployments') }} as deployments
    union all
    select 'gitlab.deployment_merge_requests', least(
        {{ utc('merge_requests.created_at') }}, {{ utc('merge_requests.merged_at') }},
        {{ utc('deployments.created_at') }}, {{ utc('deployments.updated_at') }}, {{ utc('deployments.finished_at') }})
    from {{ changed_records('gitlab', 'deployment_merge_requests') }} as merge_requests
    left join {{ source('gitlab', 'deployments') }} as deployments on merge_requests.deployment_id = deployments.id
    union all
    select 'gitlab.merge_requests', least({{ utc('created_at') }}, {{ utc('merged_at') }}, {{ utc('first_commit_at') }})
    from {{ changed_records('gitlab', 'merge_requests') }} as merge_requests
    union all
    select 'gitlab.incidents', least({{ utc('created_at') }}, {{ utc('closed_at') }})
    from {{ changed_records('gitlab', 'incidents') }} as incidents
    {%- endif %}
    {%- if 'multitudes' in sources %}
    union all
    -- A Multitudes record supersedes the earlier ones with its commits and environment (none
    -- is an environment too: int_multitudes__deployments ranks those records together).
    select 'multitudes.deployments', least({{ utc('loaded.deployed_at') }}, {{ utc('loaded.created_at') }}, {{ utc('same.deployed_at') }})
    from {{ changed_records('multitudes', 'deployments') }} as loaded
    left join {{ source('multitudes', 'deployments') }} as same
        on coalesce(same.environment_name, '') = coalesce(loaded.environment_name, '')
        and {{ sorted_list(json_string_list('same.commit_shas')) }}
            = {{ sorted_list(json_string_list('loaded.commit_shas')) }}
    {%- endif %}
    {%- if 'gitclear' in sources %}
    union all
    select 'gitclear.pull_requests', least({{ utc('created_at') }}, {{ utc('merged_at') }}, {{ utc('first_commit_at') }})
    from {{ changed_records('gitclear', 'pull_requests') }} as pull_requests
    {%- endif %}
    {%- if 'gearset_automation' in sources %}
    union all
    select 'gearset_automation.ci_job_runs', least({{ utc('start_time') }}, {{ utc('end_time') }})
    from {{ changed_records('gearset_automation', 'ci_job_runs') }} as runs
    {%- endif %}
),

decided as (
    select
        current_state.loaded_through,
        current_state.fingerprint,
        case
            when previous.models_with_state < {{ all_models | length }} then 'first build'
            when previous.fingerprints > 1 or previous.fingerprint <> current_state.fingerprint
                then 'configuration, services or models changed'
            when last_full.built_at is null
                or last_full.built_at < now() - {{ var('full_rebuild_days') }} * interval '1 day'
                then 'periodic full rebuild'
        end as full_rebuild_reason,
        previous.loaded_through as loaded_since,
        (select min(earliest) from new_times) as earliest_new,
        (select count(*) from new_times) as changed_records,
        (select {{ dbt.listagg('relation', "', '", "order by relation") }}
         from (select distinct relation from new_times) as relations) as changed_relations
    from current_state
    cross join previous
    cross join last_full
)

select
    loaded_through,
    loaded_since,
    fingerprint,
    full_rebuild_reason is not null as is_full,
    full_rebuild_reason,
    earliest_new,
    changed_records,
    changed_relations,
    case
        when full_rebuild_reason is not null then {{ horizon_everything() }}
        when earliest_new is null then {{ horizon_nothing() }}
        else earliest_new
            - {{ var('failure_window_days') }} * interval '1 day'
            - {{ var('deployment_match_tolerance_seconds') }} * interval '1 second'
    end as horizon
from decided
