select 'gearset_automation:' || run_id as deployment_id, head_commit_hash as sha
from {{ ref('stg_gearset_automation__ci_job_runs') }}
where head_commit_hash is not null
