-- The horizon of this build for the unified models and the marts (one row; see
-- macros/refresh_horizon.sql): the horizon of the loads (`int_refresh_loads`), or everything when
-- failure tracking changed since those models were last built (it decides which deployments and
-- failures count, for every day of a service's history).
{{ config(materialized='table') }}

{%- set unified_models = horizon_models(['loads']) %}

with loads as (
    select * from {{ ref('int_refresh_loads') }}
),

tracking as (
    select {{ dbt.listagg('cast(tracking as varchar)', "'|'", "order by service") }} as rows_text
    from {{ ref('int_failure_tracking') }} as tracking
),

current_state as (
    select md5(loads.fingerprint || coalesce((select rows_text from tracking), '')) as fingerprint
    from loads
),

previous as (
    select count(distinct fingerprint) as fingerprints, min(fingerprint) as fingerprint
    from {{ latest_refresh_state() }} as latest_state
    where model in ({{ quoted_list(unified_models) }})
),

decided as (
    select
        loads.*,
        current_state.fingerprint as unified_fingerprint,
        coalesce(
            loads.full_rebuild_reason,
            case
                when previous.fingerprints > 1 or previous.fingerprint <> current_state.fingerprint
                    then 'failure tracking changed'
            end
        ) as reason
    from loads
    cross join current_state
    cross join previous
)

select
    loaded_through,
    unified_fingerprint as fingerprint,
    reason is not null as is_full,
    reason as full_rebuild_reason,
    earliest_new,
    case when reason is not null then {{ horizon_everything() }} else horizon end as horizon
from decided
