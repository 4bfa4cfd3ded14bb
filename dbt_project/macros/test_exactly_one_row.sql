{#- Generic test: the model holds exactly one row (a summary such as int_refresh_horizon). -#}
{% test exactly_one_row(model) %}
select count(*) as n
from {{ model }}
having count(*) <> 1
{% endtest %}
