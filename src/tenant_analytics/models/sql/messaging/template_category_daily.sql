{{ config(grain=['tenant_id', 'category', 'day']) }}
-- Sent messages by template category (master data) and day of sending.
SELECT
    m.tenant_id,
    COALESCE(t.category, 'uncategorised') AS category,
    DATE_TRUNC('day', m.sent_at) AS day,
    COUNT(*) AS sent,
    COUNT(m.delivered_at) AS delivered,
    COUNT(m.read_at) AS opened,
    COUNT(m.failed_at) AS failed,
    CAST(COUNT(m.delivered_at) AS DOUBLE PRECISION) / COUNT(*) AS delivery_rate
FROM {{ ref('message_status') }} AS m
JOIN {{ source('messaging.templates') }} AS t
    ON t.tenant_id = m.tenant_id AND t.template_id = m.template_id
WHERE m.sent_at IS NOT NULL
GROUP BY 1, 2, 3
