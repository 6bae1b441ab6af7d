{{ config(grain=['tenant_id', 'month', 'channel', 'priority']) }}
SELECT
    d.tenant_id,
    DATE_TRUNC('month', d.day) AS month,
    d.channel,
    d.priority,
    SUM(d.tickets_created) AS tickets_created,
    SUM(d.tickets_solved) AS tickets_solved,
    SUM(d.tickets_unresolved) AS tickets_unresolved,
    SUM(d.tickets_assigned) AS tickets_assigned,
    COUNT(*) AS active_days
FROM {{ ref('tickets_daily') }} AS d
GROUP BY 1, 2, 3, 4
