{#- Generic test: no two rows share the same values in `columns` (no dbt hub package needed).
    The rows are grouped by a hash of the columns first (a number is cheaper to group than text:
    0.3 s instead of 0.6 s over 3.9M change-deployment links at a million deployments), then only
    the rows whose hash repeats are grouped by the columns themselves, so a collision of hashes
    never fails the test and a duplicate always does (equal values hash equally). -#}
{% test unique_combination(model, columns) %}
with repeated_hashes as (
    select {{ values_hash(columns) }} as row_hash
    from {{ model }}
    group by {{ values_hash(columns) }}
    having count(*) > 1
)

select {{ columns | join(', ') }}, count(*) as n
from {{ model }}
where {{ values_hash(columns) }} in (select row_hash from repeated_hashes)
group by {{ columns | join(', ') }}
having count(*) > 1
{% endtest %}
