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

{#- Every enabled source's `int_<source>__<entity>` with the columns of `columns` (name -> type),
    in that order, one `union all`; a column a source does not provide is null. An empty relation
    of those columns when no enabled source provides the entity. -#}
{% macro union_sources(entity, columns) -%}
    {%- set parts = [] -%}
    {%- for source in var('dora_sources') -%}
        {%- if entity in source_entities().get(source, []) -%}
            {%- set relation = ref('int_' ~ source ~ '__' ~ entity) -%}
            {%- set provided = adapter.get_columns_in_relation(relation) | map(attribute='name') | map('lower') | list if execute else [] -%}
            {#- A relation not built (parsing; a unit test's fixture) is taken to have every column. -#}
            {%- set provided = provided or columns.keys() | list -%}
            {%- set selected = [] -%}
            {%- for name, type in columns.items() -%}
                {%- do selected.append(name if name in provided else 'cast(null as ' ~ type ~ ') as ' ~ name) -%}
            {%- endfor -%}
            {%- do parts.append('select ' ~ selected | join(', ') ~ ' from ' ~ relation) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if parts -%}
        {{ parts | join('\nunion all\n') }}
    {%- else -%}
        select {% for name, type in columns.items() %}cast(null as {{ type }}) as {{ name }}{{ ", " if not loop.last }}{% endfor %} where false
    {%- endif -%}
{%- endmacro %}
