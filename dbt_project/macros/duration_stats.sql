{#- n, median, p75, p90 and mean of a duration column, named `<prefix>_n`,
    `<prefix>_median_seconds`, ... Percentiles interpolate linearly, like PERCENTILE_CONT. -#}
{% macro duration_stats(column, prefix) -%}
    count({{ column }}) as {{ prefix }}_n,
    {{ percentile(column, 0.5) }} as {{ prefix }}_median_seconds,
    {{ percentile(column, 0.75) }} as {{ prefix }}_p75_seconds,
    {{ percentile(column, 0.9) }} as {{ prefix }}_p90_seconds,
    avg({{ column }}) as {{ prefix }}_mean_seconds
{%- endmacro %}
