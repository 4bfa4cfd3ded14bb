-- One row per commit SHA a Multitudes deployment lists.
select 'multitudes:' || deployment_id as deployment_id, unnest(commit_shas) as sha
from {{ ref('stg_multitudes__deployments') }}
