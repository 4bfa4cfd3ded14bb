select
    id as environment_id,
    pipeline_id,
    name as environment_name,
    org_location_type,
    coalesce(org_location_type = 'SalesforceProductionOrg', false) as is_production
from {{ source('gearset', 'environments') }}
qualify row_number() over (partition by id order by _dlt_load_id desc) = 1
