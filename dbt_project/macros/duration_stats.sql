{#- n, median, p75, p90 and mean of a duration column, named `<prefix>_n`,
    `<prefix>_median_seconds`, ... Percentiles interpolate linearly, like PERCENTILE_CONT. -#}
{% macro duration_stats(column, prefix) -%}
    {{ return(adapter.dispatch('duration_stats', 'dora')(column, prefix)) }}
{%- endmacro %}

{#- DuckDB computes the three percentiles from one sort of the group when they are asked for as
    one list (the same list expression thrice is one aggregate): about 2.5x faster than three
    separate quantiles over a million changes, equal to the last bit. -#}
{% macro duckdb__duration_stats(column, prefix) -%}
    {%- set quantiles = 'quantile_cont(' ~ column ~ ', [0.5, 0.75, 0.9])' -%}
    count({{ column }}) as {{ prefix }}_n,
    {{ quantiles }}[1] as {{ prefix }}_median_seconds,
    {{ quantiles }}[2] as {{ prefix }}_p75_seconds,
    {{ quantiles }}[3] as {{ prefix }}_p90_seconds,
    avg({{ column }}) as {{ prefix }}_mean_seconds
{%- endmacro %}

{% macro default__duration_stats(column, prefix) -%}
    count({{ column }}) as {{ prefix }}_n,
    {{ percentile(column, 0.5) }} as {{ prefix }}_median_seconds,
    {{ percentile(column, 0.75) }} as {{ prefix }}_p75_seconds,
    {{ percentile(column, 0.9) }} as {{ prefix }}_p90_seconds,
    avg({{ column }}) as {{ prefix }}_mean_seconds
{%- endmacro %}
