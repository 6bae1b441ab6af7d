{{ config(grain=['tenant_id', 'campaign_id', 'channel', 'hour']) }}
-- Sent messages by campaign, channel and hour of sending. Latency buckets are cumulative (delivered within
-- N seconds) so that percentiles stay additive up the hierarchy. No join: every sent message counts, so the
-- hierarchy above adds up to exactly what message_status holds (names come from master-data models).
SELECT
    m.tenant_id,
    m.campaign_id,
    COALESCE(m.channel, 'unknown') AS channel,
    DATE_TRUNC('hour', m.sent_at) AS hour,
    COUNT(*) AS sent,
    COUNT(m.delivered_at) AS delivered,
    COUNT(m.read_at) AS opened,
    COUNT(m.failed_at) AS failed,
    CAST(COUNT(m.delivered_at) AS DOUBLE PRECISION) / COUNT(*) AS delivery_rate,
    CAST(COUNT(m.read_at) AS DOUBLE PRECISION) / NULLIF(COUNT(m.delivered_at), 0) AS read_rate,
    SUM(CASE WHEN m.delivered_at <= m.sent_at + INTERVAL '1 second' THEN 1 ELSE 0 END) AS latency_le_1s,
    SUM(CASE WHEN m.delivered_at <= m.sent_at + INTERVAL '5 seconds' THEN 1 ELSE 0 END) AS latency_le_5s,
    SUM(CASE WHEN m.delivered_at <= m.sent_at + INTERVAL '30 seconds' THEN 1 ELSE 0 END) AS latency_le_30s,
    SUM(CASE WHEN m.delivered_at <= m.sent_at + INTERVAL '60 seconds' THEN 1 ELSE 0 END) AS latency_le_60s,
    SUM(CASE WHEN m.delivered_at <= m.sent_at + INTERVAL '300 seconds' THEN 1 ELSE 0 END) AS latency_le_300s,
    SUM(CASE WHEN m.delivered_at <= m.sent_at + INTERVAL '3600 seconds' THEN 1 ELSE 0 END) AS latency_le_3600s
FROM {{ ref('message_status') }} AS m
WHERE m.sent_at IS NOT NULL AND m.campaign_id IS NOT NULL
GROUP BY 1, 2, 3, 4
