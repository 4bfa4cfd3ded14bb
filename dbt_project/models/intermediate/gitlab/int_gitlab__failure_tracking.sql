-- Whether GitLab records failures for each project: it does once the project has at least one
-- incident (most projects never use GitLab incident management, and then it records nothing).
select
    projects.project_name as service,
    'gitlab' as source,
    count(incidents.incident_id) > 0 as records_failures
from {{ ref('stg_gitlab__projects') }} as projects
left join {{ ref('stg_gitlab__incidents') }} as incidents on projects.project_id = incidents.project_id
group by 1
