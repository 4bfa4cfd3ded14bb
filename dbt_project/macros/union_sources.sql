{#- Which unified entities each source provides. A source contributes to an entity's union only
    when it is enabled (var `dora_sources`) and provides it. -#}
{% macro source_entities() -%}
    {{ return({
        'gearset': ['deployments', 'changes', 'change_deployments', 'failures', 'failure_tracking', 'service_keys'],
        'gitlab': ['deployments', 'changes', 'change_deployments', 'failures', 'deployment_commits', 'failure_tracking', 'service_keys'],
        'multitudes': ['deployments', 'deployment_commits', 'service_keys'],
        'gitclear': ['changes', 'failure_tracking', 'service_keys'],
        'gearset_automation': ['deployments', 'deployment_commits', 'service_keys'],
    }) }}
{%- endmacro %}

{#- `select * from int_<source>__<entity>` for every enabled source that provides the entity,
    joined by `union all by name`; an empty relation of `empty_columns` when none does. -#}
{% macro union_sources(entity, empty_columns) -%}
    {%- set parts = [] -%}
    {%- for source in var('dora_sources') -%}
        {%- if entity in source_entities().get(source, []) -%}
            {%- do parts.append('select * from ' ~ ref('int_' ~ source ~ '__' ~ entity)) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if parts -%}
        {{ parts | join('\nunion all by name\n') }}
    {%- else -%}
        select {% for name, type in empty_columns.items() %}cast(null as {{ type }}) as {{ name }}{{ ", " if not loop.last }}{% endfor %} where false
    {%- endif -%}
{%- endmacro %}
