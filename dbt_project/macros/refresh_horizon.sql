{#- Incremental builds on a horizon. A scheduled refresh brings a day of new records and the
    sources' look-backs, yet every record before some time is exactly what the last build saw.
    `int_refresh_loads` finds that time from the loads dlt finished since the last build; the heavy
    per-source models (`horizon='sources'`) keep their rows anchored before it and rebuild the rest,
    and so do the unified models (`horizon='loads'`) on `int_refresh_horizon`, the same time unless
    failure tracking changed. The metric marts (`horizon='metrics'`) rebuild the periods from the
    earliest one whose records changed. The state of every such build is a row of
    `dbt_refresh_state`, written in the build's own transaction, so a failed build leaves the
    previous state and the next build redoes its work. -#}

{% macro refresh_state_relation() -%}
    {{ return(api.Relation.create(
        database=target.database, schema=generate_schema_name('intermediate', none),
        identifier='dbt_refresh_state', type='table')) }}
{%- endmacro %}

{#- on-run-start: the state table, when it does not exist yet. -#}
{% macro create_refresh_state() -%}
    {%- set state = refresh_state_relation() -%}
    create schema if not exists {{ state.include(database=false, identifier=false) }};
    create table if not exists {{ state }} (
        model varchar,
        invocation_id varchar,
        built_at timestamp with time zone,
        loaded_through timestamp with time zone,
        fingerprint varchar,
        is_full boolean,
        changed_from timestamp
    )
{%- endmacro %}

{#- The models built on a horizon of one of `kinds` (`sources`, `loads`, `metrics`), by name. -#}
{% macro horizon_models(kinds) -%}
    {%- set names = [] -%}
    {%- if execute -%}
        {%- for node in graph.nodes.values() | sort(attribute='name') if node.resource_type == 'model' -%}
            {%- if node.config.get('horizon') in kinds %}{% do names.append(node.name) %}{% endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(names) }}
{%- endmacro %}

{#- Each model's last state row, as a subquery with the state table's columns. -#}
{% macro latest_refresh_state() -%}
    {%- set state = refresh_state_relation() -%}
    (select state.*
     from (select model, max(built_at) as built_at from {{ state }} group by model) as latest
     inner join {{ state }} as state on latest.model = state.model and latest.built_at = state.built_at)
{%- endmacro %}

{#- Names as an SQL list of string literals, for `in (...)`; `null` (matching nothing) when empty. -#}
{% macro quoted_list(names) -%}
    {%- if names -%}'{{ names | join("', '") }}'{%- else -%}null{%- endif -%}
{%- endmacro %}

{#- The one-row model that holds the horizon of a model's kind. A hook is parsed without the
    model's config (no kind): it names the loads' row, upstream of every model on a horizon. -#}
{% macro horizon_relation(kind) -%}
    {{ return(ref('int_refresh_horizon') if kind in ('loads', 'metrics') else ref('int_refresh_loads')) }}
{%- endmacro %}

{#- The earliest and latest timestamps the horizons use: "everything" and "nothing". -#}
{% macro horizon_everything() %}cast('1900-01-01' as timestamp){% endmacro %}
{% macro horizon_nothing() %}cast('9999-12-31' as timestamp){% endmacro %}

{#- The config of a model built on a horizon (`sources`, `loads` or `metrics`): its rows anchored
    at or after the horizon are replaced. `buckets`: the metric times whose changes the marts are told of. A
    table an earlier version built (without a column added since) takes the new rows' columns; with
    no state of its own, it is then rebuilt whole. -#}
{% macro horizon_config(horizon, anchor, unique_key, buckets=none, grain=none) -%}
    {{ return({
        'materialized': 'incremental',
        'incremental_strategy': 'horizon',
        'horizon': horizon,
        'horizon_anchor': anchor,
        'horizon_buckets': buckets,
        'horizon_grain': grain,
        'unique_key': unique_key,
        'post_hook': '{{ record_created_refresh_state() }}',
        'on_schema_change': 'sync_all_columns',
    }) }}
{%- endmacro %}

{#- The time that anchors a row of the unified records: a row whose anchor precedes the horizon is
    kept. A change not yet deployed and a failure still open are anchored at "nothing" (always
    rebuilt); a change or failure also moves with its deployment's time. A source's change before
    it is linked (`source_changes`) moves with its own times. -#}
{% macro horizon_anchor(entity) -%}
    {%- set nothing = horizon_nothing() -%}
    {{ return({
        'deployments': 'coalesce(deployed_at, ' ~ nothing ~ ')',
        'changes': 'greatest(coalesce(deployed_at, ' ~ nothing ~ '), first_commit_at, opened_at, merged_at)',
        'failures': 'greatest(detected_at, coalesce(resolved_at, ' ~ nothing ~ '), caused_by_deployed_at)',
        'source_changes': 'greatest(first_commit_at, opened_at, merged_at)',
    }[entity]) }}
{%- endmacro %}

{#- The time from which a model rebuilds its rows: for `sources` and `loads` the horizon of the
    loads since the last build, for `metrics` the first period whose records changed since this
    mart's last build (every period when the configuration changed or the intermediate models were
    rebuilt whole). -#}
{% macro horizon_start(kind, grain=none) -%}
    {%- if kind in ('sources', 'loads') -%}
    {#- Read when the model runs (its horizon model is upstream, built by then) and written as a
        literal: a constant filter lets the warehouse skip the row groups wholly before it (DuckDB's
        zone maps), where a subquery makes every scan and delete read the whole table. -#}
    {%- set found = run_query('select horizon from ' ~ horizon_relation(kind)) if execute else none -%}
    {%- set horizon = found.columns[0].values() | first if found is not none and found.rows | length == 1 else none -%}
    {%- if horizon is not none -%}
    cast('{{ horizon.isoformat() }}' as timestamp)
    {%- else -%}
    (select horizon from {{ horizon_relation(kind) }})
    {%- endif -%}
    {%- else -%}
    {%- set state = refresh_state_relation() -%}
    {%- set own = "(select max(built_at) from " ~ state ~ " where model = '" ~ this.identifier ~ "')" -%}
    (select {{ period_bucket(grain, 'coalesce(min(changed_from), ' ~ horizon_nothing() ~ ')') }}
     from (
        select changed_from from {{ state }}
        where model in ('int_deployments', 'int_changes', 'int_failures')
            and built_at > coalesce({{ own }}, cast('1900-01-01' as timestamp with time zone))
        union all
        select {{ horizon_everything() }} from {{ ref('int_refresh_horizon') }} as horizon
        where horizon.is_full or {{ own }} is null
            or horizon.fingerprint <> (
                select min(fingerprint) from {{ state }}
                where model = '{{ this.identifier }}' and built_at = {{ own }})
     ) as changes)
    {%- endif -%}
{%- endmacro %}

{#- The `horizon` incremental strategy: the rows anchored at or after the horizon (config
    `horizon_anchor`), and the rows whose key the new batch holds, are replaced by the new batch.
    Before that, the earliest metric time (config `horizon_buckets`) among the rows that differ
    between the old and the new versions is recorded, for the marts that read this model. -#}
{% macro get_incremental_horizon_sql(arg_dict) -%}
    {%- set unique_key = arg_dict['unique_key'] -%}
    {%- set keys = [unique_key] if unique_key is string else unique_key -%}
    {%- set batch = arg_dict['temp_relation'] -%}
    {%- set columns = arg_dict['dest_columns'] | map(attribute='quoted') | join(', ') -%}
    {%- set replaced -%}
        {{ config.get('horizon_anchor') }} >= {{ horizon_start(config.get('horizon'), config.get('horizon_grain')) }}
        or exists (
            select 1 from {{ batch }} as batch
            where {% for key in keys %}batch.{{ key }} = current_rows.{{ key }}{{ ' and ' if not loop.last }}{% endfor %})
    {%- endset -%}
    {%- set new_rows = 'select ' ~ columns ~ ' from ' ~ batch -%}
    {%- set buckets = config.get('horizon_buckets') -%}
    {#- A full rebuild (the horizon is everything) replaces every row, and every period changed:
        nothing to compare. -#}
    {%- set horizon = run_query('select is_full from ' ~ horizon_relation(config.get('horizon'))) if execute else none -%}
    {%- set is_full = horizon is not none and horizon.columns[0].values() | first -%}
    {#- The state row goes first where it compares the old rows with the new, last where the
        horizon reads this model's own last state (a mart's). -#}
    {%- if buckets and is_full -%}
    {{ record_refresh_state(horizon_everything()) }};
    {% elif buckets -%}
    {#- Old and new versions paired by key (unique in both: tested), each kept row compared with
        its new version column by column. A symmetric `except all` hashed every column of both
        sides and read the old rows twice: 0.85 s of int_changes' 2.2 s in a day's refresh at a
        million deployments; pairing takes a sixth of the time. -#}
    {%- set quoted = arg_dict['dest_columns'] | map(attribute='quoted') | list -%}
    {%- set old_version = 'select ' ~ columns ~ ', true as is_present_ from ' ~ arg_dict['target_relation'] ~ ' as current_rows where ' ~ replaced -%}
    {%- set new_version = 'select ' ~ columns ~ ', true as is_present_ from ' ~ batch -%}
    {%- set paired = [] %}{% for key in keys %}{% do paired.append('old_version.' ~ key ~ ' = new_version.' ~ key) %}{% endfor -%}
    {%- set times = [] %}{% for side in ('old_version', 'new_version') %}{% for bucket in buckets %}{% do times.append(side ~ '.' ~ bucket) %}{% endfor %}{% endfor -%}
    {{ record_refresh_state(
        '(select min(least(' ~ times | join(', ') ~ ')) from (' ~ old_version ~ ') as old_version'
        ~ ' full join (' ~ new_version ~ ') as new_version on ' ~ paired | join(' and ')
        ~ ' where old_version.is_present_ is null or new_version.is_present_ is null'
        ~ ' or row(old_version.' ~ quoted | join(', old_version.') ~ ')'
        ~ ' is distinct from row(new_version.' ~ quoted | join(', new_version.') ~ '))') }};
    {% endif -%}
    delete from {{ arg_dict['target_relation'] }} as current_rows{% if not is_full %} where {{ replaced }}{% endif %};
    insert into {{ arg_dict['target_relation'] }} ({{ columns }}) {{ new_rows }}
    {%- if not buckets %};
    {{ record_refresh_state('cast(null as timestamp)') }}
    {%- endif %}
{%- endmacro %}

{#- A row of this build's state; `changed_from` is the earliest metric time whose records changed. -#}
{% macro record_refresh_state(changed_from) -%}
    insert into {{ refresh_state_relation() }} (model, invocation_id, built_at, loaded_through, fingerprint, is_full, changed_from)
    select
        '{{ this.identifier }}', '{{ invocation_id }}', now(), horizon.loaded_through, horizon.fingerprint,
        horizon.is_full, {{ changed_from }}
    from {{ horizon_relation(config.get('horizon')) }} as horizon
{%- endmacro %}

{#- post-hook: the state row of a model created whole (its first build, --full-refresh), when the
    strategy did not write one: everything changed. -#}
{% macro record_created_refresh_state() -%}
    {%- set state = refresh_state_relation() -%}
    insert into {{ state }} (model, invocation_id, built_at, loaded_through, fingerprint, is_full, changed_from)
    select
        '{{ this.identifier }}', '{{ invocation_id }}', now(), horizon.loaded_through, horizon.fingerprint,
        true, {{ horizon_everything() }}
    from {{ horizon_relation(config.get('horizon')) }} as horizon
    where not exists (
        select 1 from {{ state }}
        where model = '{{ this.identifier }}' and invocation_id = '{{ invocation_id }}')
{%- endmacro %}

{#- dlt's record of the loads into a source's raw schema, as a subquery: empty where the source
    never finished a load (its first failed: dlt has not created the table). -#}
{% macro dlt_loads(source_name) -%}
    {%- set any_table = {
        'gearset': 'deployments', 'gitlab': 'deployments', 'multitudes': 'deployments',
        'gitclear': 'pull_requests', 'gearset_automation': 'ci_job_runs'}[source_name] -%}
    {%- set raw = source(source_name, any_table) -%}
    {%- set loads = adapter.get_relation(database=raw.database, schema=raw.schema, identifier='_dlt_loads') if execute else none -%}
    {%- if loads is not none -%}
    (select load_id, status, inserted_at from {{ loads }})
    {%- else -%}
    (select cast(null as varchar) as load_id, 0 as status, cast(null as timestamp with time zone) as inserted_at where false)
    {%- endif -%}
{%- endmacro %}

{#- The loads into a source's raw schema that finished after the last build (in
    int_refresh_loads, whose CTE `previous` holds that time). A load of records extracted
    before a crash and loaded on a later run counts by when it finished, not by its id. -#}
{% macro new_loads(source_name) -%}
    select load_id from {{ dlt_loads(source_name) }} as loads
    where status = 0 and inserted_at > (select loaded_through from previous)
{%- endmacro %}
