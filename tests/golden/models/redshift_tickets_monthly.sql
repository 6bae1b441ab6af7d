CREATE MATERIALIZED VIEW models.tickets_monthly DISTKEY (tenant_id) SORTKEY (tenant_id, month, channel, priority) AUTO REFRESH NO AS SELECT
  d.tenant_id,
  DATE_TRUNC('MONTH', d.day) AS month,
  d.channel,
  d.priority,
  SUM(d.tickets_created) AS tickets_created,
  SUM(d.tickets_solved) AS tickets_solved,
  SUM(d.tickets_unresolved) AS tickets_unresolved,
  SUM(d.tickets_assigned) AS tickets_assigned,
  COUNT(*) AS active_days
FROM models.tickets_daily AS d
GROUP BY
  d.tenant_id,
  DATE_TRUNC('MONTH', d.day),
  d.channel,
  d.priority;

ATTACH RLS POLICY models_tenant_isolation ON models.tickets_monthly TO ROLE ta_query;

ALTER MATERIALIZED VIEW models.tickets_monthly ROW LEVEL SECURITY ON;

GRANT SELECT ON models.tickets_monthly TO ROLE ta_query;
