-- Commit SHAs each deployment is known to have released (revision, or the SHAs a tool lists).
select distinct * from (
    {{ union_sources('deployment_commits', {'deployment_id': 'varchar', 'sha': 'varchar'}) }}
) as commits
