-- DORA metrics per team x month, aggregated from the records (not from service results).
{{ dora_metrics('month', 'team') }}
