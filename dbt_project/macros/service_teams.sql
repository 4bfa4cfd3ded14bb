{#- The user's service -> team mapping (var `service_teams`) as a relation. -#}
{% macro service_teams_relation() -%}
    {%- set teams = var('service_teams', {}) -%}
    {%- if teams -%}
    select * from (values
        {%- for service, team in teams.items() %}
        ('{{ service | replace("'", "''") }}', '{{ team | replace("'", "''") }}'){{ "," if not loop.last }}
        {%- endfor %}
    ) as mapping(service, team)
    {%- else -%}
    select cast(null as varchar) as service, cast(null as varchar) as team where false
    {%- endif -%}
{%- endmacro %}
