-- What this build saw of each raw record that sets the horizon: its key, a hash of its content and
-- when its load finished (macros/refresh_records.sql). The next build's `int_refresh_loads` counts
-- a record loaded again only when it differs from this (or some model did not build on it since):
-- the look-backs' unchanged records then do not move the horizon. An incremental build stores the
-- records of the loads since the last build; the first stores them all.
{{ config(materialized='incremental', unique_key=['relation', 'record_key'], incremental_strategy='delete+insert') }}

{%- set tables = horizon_record_tables() %}

with loads as (
    select * from {{ ref('int_refresh_loads') }}
)

{% for source_name, table in tables %}
{%- set relation = source(source_name, table) %}
select
    cast('{{ source_name }}.{{ table }}' as {{ dbt.type_string() }}) as relation,
    {{ record_key('loaded', raw_primary_key(source_name, table)) }} as record_key,
    {{ record_hash('loaded', relation) }} as row_hash,
    finished.inserted_at as loaded_at
from {{ relation }} as loaded
inner join {{ dlt_loads(source_name) }} as finished on finished.load_id = loaded._dlt_load_id
where finished.status = 0
    {%- if is_incremental() %}
    and finished.inserted_at > coalesce((select loaded_since from loads), cast('1900-01-01' as timestamp with time zone))
    {%- endif %}
{{ 'union all' if not loop.last }}
{% endfor %}
