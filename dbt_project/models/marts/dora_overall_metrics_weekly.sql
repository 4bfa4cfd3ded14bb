-- DORA metrics of the whole organisation per week, aggregated from the records.
{{ dora_metrics('week', 'overall') }}
