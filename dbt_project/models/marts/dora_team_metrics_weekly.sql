-- DORA metrics per team x week, aggregated from the records (not from service results).
{{ dora_metrics('week', 'team') }}
