-- Whether GitLab records failures for each project: it does once the project has at least one
-- incident (most projects never use GitLab incident management, and then it records nothing).
with per_project as (
    select projects.project_id, count(incidents.incident_id) > 0 as records_failures
    from {{ ref('stg_gitlab__projects') }} as projects
    left join {{ ref('stg_gitlab__incidents') }} as incidents on projects.project_id = incidents.project_id
    group by projects.project_id
)

select
    {{ service_of('gitlab', 'cast(per_project.project_id as varchar)') }} as service,
    'gitlab' as source,
    bool_or(records_failures) as records_failures
from per_project
group by 1
