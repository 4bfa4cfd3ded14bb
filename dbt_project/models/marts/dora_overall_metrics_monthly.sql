-- DORA metrics of the whole organisation per month, aggregated from the records.
{{ dora_metrics('month', 'overall') }}
