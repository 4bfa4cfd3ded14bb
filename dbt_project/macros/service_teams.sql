{#- A `{key: value}` var of the user's configuration as a two-column relation. Keys and values
    are quoted literals, so names with quotes or any Unicode are safe. -#}
{% macro mapping_relation(var_name, key_column, value_column, value_type='varchar') -%}
    {%- set mapping = var(var_name, {}) or {} -%}
    {%- if mapping -%}
    select * from (values
        {%- for key, value in mapping.items() %}
        ('{{ key | replace("'", "''") }}', cast({{ "null" if value is none else ("'" ~ (value | string | replace("'", "''")) ~ "'") }} as {{ value_type }})){{ "," if not loop.last }}
        {%- endfor %}
    ) as mapping({{ key_column }}, {{ value_column }})
    {%- else -%}
    select cast(null as varchar) as {{ key_column }}, cast(null as {{ value_type }}) as {{ value_column }} where false
    {%- endif -%}
{%- endmacro %}

{#- The user's service -> team mapping (var `service_teams`) as a relation. -#}
{% macro service_teams_relation() -%}
    {{ mapping_relation('service_teams', 'service', 'team') }}
{%- endmacro %}

{#- The user's service -> tracks failures (true/false) overrides (var `service_failure_tracking`). -#}
{% macro failure_tracking_relation() -%}
    {{ mapping_relation('service_failure_tracking', 'service', 'tracks_failures', 'boolean') }}
{%- endmacro %}
