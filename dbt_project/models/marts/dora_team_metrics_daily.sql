-- DORA metrics per team x day, aggregated from the records (not from service results).
{{ dora_metrics('day', 'team') }}
