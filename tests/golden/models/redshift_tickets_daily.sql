CREATE MATERIALIZED VIEW models.tickets_daily DISTKEY (tenant_id) SORTKEY (tenant_id, day, channel, priority) AUTO REFRESH NO AS SELECT
  t.tenant_id,
  DATE_TRUNC('DAY', t.created_at) AS day,
  COALESCE(t.channel, 'unknown') AS channel,
  COALESCE(t.priority, 'none') AS priority,
  COUNT(*) AS tickets_created,
  SUM(CASE WHEN t.status IN ('solved', 'closed') THEN 1 ELSE 0 END) AS tickets_solved,
  SUM(CASE WHEN t.status IN ('solved', 'closed') THEN 0 ELSE 1 END) AS tickets_unresolved,
  COUNT(t.assignee_id) AS tickets_assigned
FROM support.tickets AS t
GROUP BY
  t.tenant_id,
  DATE_TRUNC('DAY', t.created_at),
  COALESCE(t.channel, 'unknown'),
  COALESCE(t.priority, 'none');

ATTACH RLS POLICY models_tenant_isolation ON models.tickets_daily TO ROLE ta_query;

ALTER MATERIALIZED VIEW models.tickets_daily ROW LEVEL SECURITY ON;

GRANT SELECT ON models.tickets_daily TO ROLE ta_query;
