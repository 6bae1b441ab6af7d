{{ config(grain=['tenant_id', 'day']) }}
SELECT
    d.tenant_id,
    d.day,
    COUNT(*) AS campaigns,
    SUM(d.sent) AS sent,
    SUM(d.delivered) AS delivered,
    SUM(d.opened) AS opened,
    SUM(d.failed) AS failed,
    CAST(SUM(d.delivered) AS DOUBLE PRECISION) / NULLIF(SUM(d.sent), 0) AS delivery_rate,
    CAST(SUM(d.opened) AS DOUBLE PRECISION) / NULLIF(SUM(d.delivered), 0) AS read_rate,
    SUM(d.latency_le_1s) AS latency_le_1s,
    SUM(d.latency_le_5s) AS latency_le_5s,
    SUM(d.latency_le_30s) AS latency_le_30s,
    SUM(d.latency_le_60s) AS latency_le_60s,
    SUM(d.latency_le_300s) AS latency_le_300s,
    SUM(d.latency_le_3600s) AS latency_le_3600s
FROM {{ ref('campaign_daily') }} AS d
GROUP BY d.tenant_id, d.day
