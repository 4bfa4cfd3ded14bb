-- How fresh each enabled source's data is: its latest extraction attempt and outcome, and the
-- last one that succeeded. A source that failed keeps its last good data in the warehouse;
-- `hours_behind` says how much older that data is than the latest attempt.
{%- set enabled = var('dora_sources') %}
with runs as (
    select * from {{ ref('stg_dora_ops__source_runs') }}
),

sources as (
    {% for source in enabled %}
    select '{{ source }}' as source{{ ' union all' if not loop.last }}
    {% endfor %}
    {% if not enabled %}select cast(null as varchar) as source where false{% endif %}
),

latest as (
    select source, {{ last_by('status', ['finished_at']) }} as last_status,
        {{ last_by('error', ['finished_at']) }} as last_error,
        max(finished_at) as last_attempt_at
    from runs
    group by source
),

succeeded as (
    select source, max(finished_at) as last_success_at
    from runs
    where status = 'succeeded'
    group by source
)

select
    sources.source,
    latest.last_attempt_at,
    coalesce(latest.last_status, 'never_run') as last_status,
    latest.last_error,
    succeeded.last_success_at,
    ({{ epoch_seconds('latest.last_attempt_at') }} - {{ epoch_seconds('succeeded.last_success_at') }}) / 3600.0 as hours_behind
from sources
left join latest on sources.source = latest.source
left join succeeded on sources.source = succeeded.source
