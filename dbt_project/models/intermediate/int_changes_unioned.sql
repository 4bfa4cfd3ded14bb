-- Every enabled source's changes (merged pull/merge requests), one union.
{{ union_sources('changes', {
    'change_id': 'varchar', 'source': 'varchar', 'source_change_id': 'varchar', 'service': 'varchar',
    'title': 'varchar', 'opened_at': 'timestamp', 'merged_at': 'timestamp', 'first_commit_at': 'timestamp',
    'merge_sha': 'varchar'}) }}
