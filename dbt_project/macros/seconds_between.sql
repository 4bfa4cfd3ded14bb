{#- Seconds from `start` to `finish`; null when either is null or the duration is negative
    (negative durations are excluded from aggregates and reported as data quality). -#}
{% macro seconds_between(start, finish) -%}
    case when {{ finish }} >= {{ start }}
        then {{ epoch_seconds(finish) }} - {{ epoch_seconds(start) }} end
{%- endmacro %}

{#- Why a change's duration `column` (deployed_at minus a start) is left out of the aggregates, or
    null when it counts; `missing` names a null start. -#}
{% macro duration_exclusion(column, missing) -%}
    case
        when deployment_id is null then 'change_not_deployed'
        when is_first_deployment_backlog then 'first_deployment_backlog'
        when {{ column }} is null then '{{ missing }}'
        when {{ column }} < 0 then 'negative_duration'
    end
{%- endmacro %}

{#- A change's `metric` duration (lead_time, merge_to_deploy, open_to_deploy) where it counts for
    the aggregates, else null. -#}
{% macro counted_duration(metric) -%}
    case when {{ metric }}_exclusion_reason is null then {{ metric }}_seconds end
{%- endmacro %}
