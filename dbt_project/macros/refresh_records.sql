{#- What the last build saw of each raw record. The sources read their look-backs again on every
    refresh (Gearset's, GitClear's and Multitudes' last 30 days), so most records of a load are
    the same as before; only those that changed may move the horizon. `int_refresh_records`
    keeps each record's key, a hash of its content and when its load finished;
    `int_refresh_loads` compares the records loaded since the last build with it. -#}

{#- The primary key of a raw table (`config.meta.primary_key` in its source's YAML): the dlt
    resource's `primary_key`, on which dlt merges (tests/test_refresh_records.py checks they agree). -#}
{% macro raw_primary_key(source_name, table) -%}
    {%- set found = [] -%}
    {%- for node in (graph.sources.values() if execute else []) if node.source_name == source_name and node.name == table -%}
        {%- do found.append(node.config.meta.get('primary_key') or node.meta.get('primary_key')) -%}
    {%- endfor -%}
    {%- if execute and not (found and found[0]) -%}
        {%- do exceptions.raise_compiler_error('source ' ~ source_name ~ '.' ~ table ~ ' has no meta.primary_key') -%}
    {%- endif -%}
    {{ return(found[0] if found else []) }}
{%- endmacro %}

{#- A hash of values, the same for the same values in the same order: DuckDB's 64-bit `hash`,
    elsewhere the MD5 of the row's text as a uuid. -#}
{% macro values_hash(expressions) -%}
    {{ return(adapter.dispatch('values_hash')(expressions)) }}
{%- endmacro %}

{% macro default__values_hash(expressions) -%}
    cast(md5(cast(row({{ expressions | join(', ') }}) as text)) as uuid)
{%- endmacro %}

{% macro duckdb__values_hash(expressions) -%}
    hash({{ expressions | join(', ') }})
{%- endmacro %}

{#- A raw record's key and the hash of its content (every column but dlt's own, which change with
    each load), for the record aliased `alias` of `relation`. -#}
{% macro record_key(alias, keys) -%}
    {%- set columns = [] %}{% for key in keys %}{% do columns.append(alias ~ '.' ~ adapter.quote(key)) %}{% endfor -%}
    {{ values_hash(columns) }}
{%- endmacro %}

{% macro record_hash(alias, relation) -%}
    {%- set columns = [] -%}
    {%- if execute -%}
        {%- for column in adapter.get_columns_in_relation(relation) if not column.name.startswith('_dlt_') -%}
            {%- do columns.append(alias ~ '.' ~ adapter.quote(column.name)) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ values_hash(columns or ['null']) }}
{%- endmacro %}

{#- `int_refresh_records` as the last build left it, as a subquery: empty before its first build. -#}
{% macro stored_records() -%}
    {%- set stored = adapter.get_relation(
        database=target.database, schema=generate_schema_name('intermediate', none),
        identifier='int_refresh_records') if execute else none -%}
    {%- if stored is not none -%}
    (select relation, record_key, row_hash, loaded_at from {{ stored }})
    {%- else -%}
    (select
        cast(null as {{ dbt.type_string() }}) as relation, {{ values_hash(['null']) }} as record_key,
        {{ values_hash(['null']) }} as row_hash, cast(null as timestamp with time zone) as loaded_at
     where false)
    {%- endif -%}
{%- endmacro %}

{#- The records of a raw table loaded since the last build (int_refresh_loads' `previous`) that
    the last build did not see as they are: new, changed, or stored from a load some model has not
    built on since (its build failed, or it was not selected). -#}
{% macro changed_records(source_name, table) -%}
    {%- set relation = source(source_name, table) -%}
    (select loaded.*
     from {{ relation }} as loaded
     left join {{ stored_records() }} as stored
        on stored.relation = '{{ source_name }}.{{ table }}'
        and stored.record_key = {{ record_key('loaded', raw_primary_key(source_name, table)) }}
     where loaded._dlt_load_id in ({{ new_loads(source_name) }})
        and (stored.row_hash is null
            or stored.row_hash <> {{ record_hash('loaded', relation) }}
            or stored.loaded_at > (select loaded_through from previous)))
{%- endmacro %}

{#- The raw tables of the enabled sources whose records set the horizon (those with a
    `meta.primary_key`), as (source, table) pairs. -#}
{% macro horizon_record_tables() -%}
    {%- set tables = [] -%}
    {%- for node in (graph.sources.values() if execute else []) | sort(attribute='unique_id')
        if node.source_name in var('dora_sources') and (node.config.meta.get('primary_key') or node.meta.get('primary_key')) -%}
        {%- do tables.append((node.source_name, node.name)) -%}
    {%- endfor -%}
    {{ return(tables) }}
{%- endmacro %}
