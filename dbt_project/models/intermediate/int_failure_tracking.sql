-- Whether each service tracks failures, and why we think so (the definitions' "Failure tracking"):
-- the user's configuration when it says so, else whether one of the service's tools records
-- failures for it and shows that it does (Gearset `ReportedBugs` arrays, at least one GitLab
-- incident, at least one GitClear critical defect). Where failures are not tracked a zero would
-- be a lie: the failure metrics of such a service are null and its level `not_tracked`.
with services as (
    select service from {{ ref('int_deployments_unioned') }}
    union
    select service from {{ ref('int_changes_unioned') }}
    union
    select source_service from {{ ref('int_failures_unioned') }}
),

evidence as (
    {{ union_sources('failure_tracking', {'service': 'varchar', 'source': 'varchar', 'records_failures': 'boolean'}) }}
),

recorded as (
    select
        service,
        bool_or(records_failures) as records_failures,
        string_agg(distinct source, ', ' order by source) filter (where records_failures) as recording_sources
    from evidence
    group by service
),

configured as (
    {{ failure_tracking_relation() }}
),

teams as (
    {{ service_teams_relation() }}
)

select
    services.service,
    coalesce(teams.team, 'unassigned') as team,
    coalesce(configured.tracks_failures, recorded.records_failures, false) as tracks_failures,
    case
        when configured.tracks_failures is not null then 'configured'
        when recorded.records_failures then 'recorded by ' || recorded.recording_sources
        else 'no tool records failures for it'
    end as tracking_basis
from services
left join recorded on services.service = recorded.service
left join configured on services.service = configured.service
left join teams on services.service = teams.service
where services.service is not null
