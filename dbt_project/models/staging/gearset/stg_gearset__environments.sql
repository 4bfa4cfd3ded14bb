select
    id as environment_id,
    pipeline_id,
    name as environment_name,
    org_location_type,
    coalesce(org_location_type = 'SalesforceProductionOrg', false) as is_production
from {{ source('gearset', 'environments') }} as environments
