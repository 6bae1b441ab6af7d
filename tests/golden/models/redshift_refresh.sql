REFRESH MATERIALIZED VIEW models.message_status;
REFRESH MATERIALIZED VIEW models.campaign_channel_hourly;
REFRESH MATERIALIZED VIEW models.campaign_daily;
REFRESH MATERIALIZED VIEW models.failure_reasons_daily;
REFRESH MATERIALIZED VIEW models.template_category_daily;
REFRESH MATERIALIZED VIEW models.tenant_daily;
REFRESH MATERIALIZED VIEW models.tickets_daily;
REFRESH MATERIALIZED VIEW models.tickets_monthly;
