{#- What DuckDB and PostgreSQL spell differently. Every model is written once; these macros
    dispatch (adapter.dispatch) to each warehouse's own form, DuckDB keeping its fast one. The
    `default__` form is PostgreSQL's, the standard SQL one. -#}

{#- Seconds since the Unix epoch of a timestamp, as a double (fractions kept). -#}
{% macro epoch_seconds(column) -%}
    {{ return(adapter.dispatch('epoch_seconds', 'dora')(column)) }}
{%- endmacro %}

{% macro duckdb__epoch_seconds(column) -%}
    epoch({{ column }})
{%- endmacro %}

{% macro default__epoch_seconds(column) -%}
    cast(extract(epoch from {{ column }}) as double precision)
{%- endmacro %}


{#- The continuous (interpolating) percentile `fraction` of `column`, an aggregate. -#}
{% macro percentile(column, fraction) -%}
    {{ return(adapter.dispatch('percentile', 'dora')(column, fraction)) }}
{%- endmacro %}

{% macro duckdb__percentile(column, fraction) -%}
    quantile_cont({{ column }}, {{ fraction }})
{%- endmacro %}

{% macro default__percentile(column, fraction) -%}
    percentile_cont({{ fraction }}) within group (order by {{ column }})
{%- endmacro %}


{#- The value of `value` on the row with the greatest (`last_by`) or least (`first_by`) `order_by`,
    a list of expressions compared in turn; rows whose value is null are skipped. -#}
{% macro last_by(value, order_by) -%}
    {{ return(adapter.dispatch('pick_by', 'dora')(value, order_by, 'desc')) }}
{%- endmacro %}

{% macro first_by(value, order_by) -%}
    {{ return(adapter.dispatch('pick_by', 'dora')(value, order_by, 'asc')) }}
{%- endmacro %}

{#- With several keys, the least (greatest) struct of the keys and the value, whose last field is
    the value: one comparison of structs per row, about three times faster than `arg_min` keyed on
    a struct at a million rows, and a tie on every key goes to the least (greatest) value. -#}
{% macro duckdb__pick_by(value, order_by, direction) -%}
    {%- if order_by | length == 1 -%}
    {{ 'arg_max' if direction == 'desc' else 'arg_min' }}({{ value }}, {{ order_by[0] }})
    {%- else -%}
    struct_extract({{ 'max' if direction == 'desc' else 'min' }}(struct_pack(
        {%- for key in order_by %}k{{ loop.index }} := {{ key }}, {% endfor %}v := {{ value }}))
        filter (where {{ value }} is not null), 'v')
    {%- endif -%}
{%- endmacro %}

{% macro default__pick_by(value, order_by, direction) -%}
    (array_agg({{ value }} order by {% for key in order_by %}{{ key }} {{ direction }} nulls last{{ ', ' if not loop.last }}{% endfor %})
        filter (where {{ value }} is not null{% if order_by | length == 1 %} and {{ order_by[0] }} is not null{% endif %}))[1]
{%- endmacro %}


{#- A JSON array of strings (dlt's json column) as a list of varchar; null stays null. -#}
{% macro json_string_list(column) -%}
    {{ return(adapter.dispatch('json_string_list', 'dora')(column)) }}
{%- endmacro %}

{% macro duckdb__json_string_list(column) -%}
    cast(from_json({{ column }}, '["VARCHAR"]') as varchar[])
{%- endmacro %}

{% macro default__json_string_list(column) -%}
    case when {{ column }} is not null then array(select jsonb_array_elements_text({{ column }}::jsonb)) end
{%- endmacro %}


{#- Whether a list holds `value`. -#}
{% macro list_has(list, value) -%}
    {{ return(adapter.dispatch('list_has', 'dora')(list, value)) }}
{%- endmacro %}

{% macro duckdb__list_has(list, value) -%}
    list_contains({{ list }}, {{ value }})
{%- endmacro %}

{% macro default__list_has(list, value) -%}
    ({{ value }} = any({{ list }}))
{%- endmacro %}


{#- A list's elements in ascending order. -#}
{% macro sorted_list(list) -%}
    {{ return(adapter.dispatch('sorted_list', 'dora')(list)) }}
{%- endmacro %}

{% macro duckdb__sorted_list(list) -%}
    list_sort({{ list }})
{%- endmacro %}

{% macro default__sorted_list(list) -%}
    array(select element from unnest({{ list }}) as element order by element)
{%- endmacro %}


{#- `numerator / denominator` as a double, whatever the operands' types (PostgreSQL divides
    integers as integers). -#}
{% macro divide(numerator, denominator) -%}
    cast({{ numerator }} as double precision) / {{ denominator }}
{%- endmacro %}


{#- The days of the month of `date_column`. -#}
{% macro days_in_month(date_column) -%}
    cast(extract(day from {{ dbt.last_day(date_column, 'month') }}) as integer)
{%- endmacro %}


{#- `group by 1, 2, ..., n`: the first `n` columns of the select list. -#}
{% macro group_by(n) -%}
    group by {% for i in range(1, n + 1) %}{{ i }}{{ ', ' if not loop.last }}{% endfor %}
{%- endmacro %}
