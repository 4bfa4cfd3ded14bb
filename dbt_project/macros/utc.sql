{#- A UTC wall-clock TIMESTAMP from a TIMESTAMPTZ, so day/week/month buckets are UTC whatever
    the session time zone. -#}
{% macro utc(column) -%}
    timezone('UTC', {{ column }})
{%- endmacro %}
