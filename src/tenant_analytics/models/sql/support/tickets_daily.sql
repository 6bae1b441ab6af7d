{{ config(grain=['tenant_id', 'day', 'channel', 'priority']) }}
-- Tickets by day of creation, channel and priority, with their current status.
SELECT
    t.tenant_id,
    DATE_TRUNC('day', t.created_at) AS day,
    COALESCE(t.channel, 'unknown') AS channel,
    COALESCE(t.priority, 'none') AS priority,
    COUNT(*) AS tickets_created,
    SUM(CASE WHEN t.status IN ('solved', 'closed') THEN 1 ELSE 0 END) AS tickets_solved,
    SUM(CASE WHEN t.status IN ('solved', 'closed') THEN 0 ELSE 1 END) AS tickets_unresolved,
    COUNT(t.assignee_id) AS tickets_assigned
FROM {{ source('support.tickets') }} AS t
GROUP BY 1, 2, 3, 4
