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

{#- The service catalog's identifiers (var `service_identifiers`: `[source, identifier, service]`
    triples) as a relation. -#}
{% macro service_identifiers_relation() -%}
    {%- set triples = var('service_identifiers', []) or [] -%}
    {%- if triples -%}
    select * from (values
        {%- for source, identifier, service in triples %}
        ('{{ source | replace("'", "''") }}', '{{ identifier | string | replace("'", "''") }}', '{{ service | replace("'", "''") }}'){{ "," if not loop.last }}
        {%- endfor %}
    ) as catalog(source, identifier, service)
    {%- else -%}
    select cast(null as varchar) as source, cast(null as varchar) as identifier, cast(null as varchar) as service
    where false
    {%- endif -%}
{%- endmacro %}

{#- The service of a `source` record whose tool identifier is `key` (an expression), resolved by
    int_service_keys (catalog name, default name, or the full path where two identifiers of one
    tool share a name). -#}
{% macro service_of(source, key) -%}
    (
        select service_keys.service from {{ ref('int_service_keys') }} as service_keys
        where service_keys.source = '{{ source }}' and service_keys.service_key = {{ key }}
    )
{%- endmacro %}
