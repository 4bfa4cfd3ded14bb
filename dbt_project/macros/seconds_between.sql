{#- Seconds from `start` to `finish`; null when either is null or the duration is negative
    (negative durations are excluded from aggregates and reported as data quality). -#}
{% macro seconds_between(start, finish) -%}
    case when {{ finish }} >= {{ start }}
        then epoch({{ finish }}) - epoch({{ start }}) end
{%- endmacro %}
