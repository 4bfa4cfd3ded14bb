-- The merge requests GitLab links to each deployment (explicit links).
select distinct
    'gitlab:' || project_id || ':' || merge_request_iid as change_id,
    'gitlab:' || deployment_id as deployment_id,
    'explicit' as link_method
from {{ ref('stg_gitlab__deployment_merge_requests') }}
