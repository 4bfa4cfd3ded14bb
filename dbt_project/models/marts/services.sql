-- The service catalog as the warehouse applied it: every tool identifier (Gearset pipeline, GitLab
-- project, Multitudes or GitClear repository, Gearset CI job), the service it counts for, why it
-- has that name (`catalog`, `default`, or `qualified` when two identifiers of one tool share a
-- default name and are kept apart by their full path), the team, and whether the service tracks
-- failures and why.
select
    keys.source,
    keys.service_key,
    keys.service_path,
    keys.default_service,
    keys.service,
    keys.naming,
    coalesce(tracking.team, teams.team, 'unassigned') as team,
    coalesce(tracking.tracks_failures, false) as tracks_failures,
    coalesce(tracking.tracking_basis, 'no records yet') as tracking_basis
from {{ ref('int_service_keys') }} as keys
left join {{ ref('int_failure_tracking') }} as tracking on keys.service = tracking.service
left join ({{ service_teams_relation() }}) as teams on keys.service = teams.service
