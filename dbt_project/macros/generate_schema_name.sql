{#- Models land in plain schemas (`staging`, `intermediate`, `marts`), not `main_marts`. On a
    server warehouse the refresh builds them under a prefix (DORA_DBT_SCHEMA_PREFIX = `build_`) and
    publishes them by renaming the schemas, so readers never see a half-built set. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ env_var('DORA_DBT_SCHEMA_PREFIX', '') }}{{ (custom_schema_name or target.schema) | trim }}
{%- endmacro %}
