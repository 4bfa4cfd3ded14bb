{#- Models land in plain schemas (`staging`, `intermediate`, `marts`), not `main_marts`. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ (custom_schema_name or target.schema) | trim }}
{%- endmacro %}
