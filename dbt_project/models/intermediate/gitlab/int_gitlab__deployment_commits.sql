-- The revision each GitLab deployment released (for matching the same deployment across tools).
select 'gitlab:' || deployment_id as deployment_id, sha
from {{ ref('stg_gitlab__deployments') }}
where sha is not null
