select
    id as environment_id,
    project_id,
    name as environment_name,
    tier,
    coalesce(tier = 'production', false) as is_production
from {{ source('gitlab', 'environments') }} as environments
