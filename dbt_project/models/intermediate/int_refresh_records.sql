-- What this build saw of the raw records it was the first to see: each record's key, a hash of its
-- content and when its load finished (macros/refresh_records.sql). The next build's
-- `int_refresh_loads` counts a record loaded again only when it differs from this (or some model
-- did not build on it since): the look-backs, which read again the records of the last refresh,
-- then do not move the horizon with the ones that did not change.
--
-- It holds the records of the loads since the last build (all of them on the first), and keeps a
-- raw table's previous rows when no load brought any of its records: they are still its records'
-- latest versions. A record missing here counts as changed, so what it holds is never stale, only
-- small: a day's refresh and its look-backs, not the whole history.
{{ config(materialized='table') }}

{%- set tables = horizon_record_tables() %}
{%- set previous = adapter.get_relation(database=this.database, schema=this.schema, identifier=this.identifier) if execute else none %}

with loads as (
    select * from {{ ref('int_refresh_loads') }}
),

loaded as (
    {%- for source_name, table in tables %}
    {%- set relation = source(source_name, table) %}
    select
        cast('{{ source_name }}.{{ table }}' as {{ dbt.type_string() }}) as relation,
        {{ record_key('loaded', raw_primary_key(source_name, table)) }} as record_key,
        {{ record_hash('loaded', relation) }} as row_hash,
        finished.inserted_at as loaded_at
    from {{ relation }} as loaded
    inner join {{ dlt_loads(source_name) }} as finished on finished.load_id = loaded._dlt_load_id
    where finished.status = 0
        and finished.inserted_at > coalesce((select loaded_since from loads), cast('1900-01-01' as timestamp with time zone))
    {{ 'union all' if not loop.last }}
    {%- endfor %}
)

select relation, record_key, row_hash, loaded_at from loaded
{%- if previous is not none %}
union all
select relation, record_key, row_hash, loaded_at from {{ previous }} as kept
where not exists (select 1 from loaded where loaded.relation = kept.relation)
{%- endif %}
