CREATE SCHEMA IF NOT EXISTS messaging;

CREATE TABLE IF NOT EXISTS messaging.events (
    tenant_id   VARCHAR(63)  NOT NULL,
    message_id  VARCHAR(128) NOT NULL,
    event_type  VARCHAR(16)  NOT NULL,
    event_at    TIMESTAMPTZ  NOT NULL,
    campaign_id BIGINT,
    template_id BIGINT,
    channel     VARCHAR(16),
    error_code  VARCHAR(64),
    loaded_at   TIMESTAMPTZ  DEFAULT SYSDATE,
    PRIMARY KEY (tenant_id, message_id, event_type)
) DISTKEY (tenant_id) SORTKEY (tenant_id, event_at);

CREATE TABLE IF NOT EXISTS messaging.campaigns (
    tenant_id   VARCHAR(63)  NOT NULL,
    campaign_id BIGINT       NOT NULL,
    name        VARCHAR(1024),
    updated_at  TIMESTAMPTZ  NOT NULL,
    loaded_at   TIMESTAMPTZ  DEFAULT SYSDATE,
    PRIMARY KEY (tenant_id, campaign_id)
) DISTKEY (tenant_id) SORTKEY (tenant_id, campaign_id);

CREATE TABLE IF NOT EXISTS messaging.templates (
    tenant_id   VARCHAR(63)  NOT NULL,
    template_id BIGINT       NOT NULL,
    name        VARCHAR(1024),
    category    VARCHAR(64),
    updated_at  TIMESTAMPTZ  NOT NULL,
    loaded_at   TIMESTAMPTZ  DEFAULT SYSDATE,
    PRIMARY KEY (tenant_id, template_id)
) DISTKEY (tenant_id) SORTKEY (tenant_id, template_id);

GRANT USAGE ON SCHEMA messaging TO ROLE ta_etl;

REVOKE ALL ON messaging.events FROM PUBLIC;

REVOKE ALL ON messaging.campaigns FROM PUBLIC;

REVOKE ALL ON messaging.templates FROM PUBLIC;

GRANT SELECT, INSERT, UPDATE, DELETE ON messaging.events TO ROLE ta_etl;

GRANT SELECT, INSERT, UPDATE, DELETE ON messaging.campaigns TO ROLE ta_etl;

GRANT SELECT, INSERT, UPDATE, DELETE ON messaging.templates TO ROLE ta_etl;

CREATE TEMP TABLE stage_events (message_id VARCHAR(128), event_type VARCHAR(16), event_at TIMESTAMPTZ, campaign_id BIGINT, template_id BIGINT, channel VARCHAR(16), error_code VARCHAR(64));

COPY stage_events (message_id, event_type, event_at, campaign_id, template_id, channel, error_code) FROM 's3://tenant-analytics-curated/curated/messaging/run=r1/batch=b0000/tenant_id=acme/events.manifest' IAM_ROLE 'arn:aws:iam::111111111111:role/redshift-copy' FORMAT AS CSV MANIFEST TIMEFORMAT 'auto' EMPTYASNULL;

CREATE TEMP TABLE stage_campaigns (campaign_id BIGINT, name VARCHAR(1024), updated_at TIMESTAMPTZ);

COPY stage_campaigns (campaign_id, name, updated_at) FROM 's3://tenant-analytics-curated/curated/messaging/run=r1/batch=b0000/tenant_id=acme/campaigns.manifest' IAM_ROLE 'arn:aws:iam::111111111111:role/redshift-copy' FORMAT AS CSV MANIFEST TIMEFORMAT 'auto' EMPTYASNULL;

CREATE TEMP TABLE stage_templates (template_id BIGINT, name VARCHAR(1024), category VARCHAR(64), updated_at TIMESTAMPTZ);

COPY stage_templates (template_id, name, category, updated_at) FROM 's3://tenant-analytics-curated/curated/messaging/run=r1/batch=b0000/tenant_id=acme/templates.manifest' IAM_ROLE 'arn:aws:iam::111111111111:role/redshift-copy' FORMAT AS CSV MANIFEST TIMEFORMAT 'auto' EMPTYASNULL;

CREATE TEMP TABLE new_events AS SELECT s.message_id, s.event_type, s.event_at, s.campaign_id, s.template_id, s.channel, s.error_code FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY message_id, event_type ORDER BY event_at) AS rn FROM stage_events) AS s WHERE s.rn = 1 AND NOT EXISTS (SELECT 1 FROM messaging.events AS e WHERE e.tenant_id = 'acme' AND e.message_id = s.message_id AND e.event_type = s.event_type);

CREATE TEMP TABLE newest_campaigns AS SELECT s.campaign_id, s.name, s.updated_at FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY campaign_id ORDER BY updated_at DESC, name) AS rn FROM stage_campaigns) AS s LEFT JOIN messaging.campaigns AS t ON t.tenant_id = 'acme' AND t.campaign_id = s.campaign_id WHERE s.rn = 1 AND (t.campaign_id IS NULL OR t.updated_at < s.updated_at);

CREATE TEMP TABLE newest_templates AS SELECT s.template_id, s.name, s.category, s.updated_at FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY template_id ORDER BY updated_at DESC, name, category) AS rn FROM stage_templates) AS s LEFT JOIN messaging.templates AS t ON t.tenant_id = 'acme' AND t.template_id = s.template_id WHERE s.rn = 1 AND (t.template_id IS NULL OR t.updated_at < s.updated_at);

CREATE TEMP TABLE merge_stats AS SELECT (SELECT COUNT(*) FROM stage_events) AS events_in, (SELECT COUNT(*) FROM new_events) AS events_inserted, (SELECT COUNT(*) FROM stage_campaigns) AS campaigns_in, (SELECT COUNT(*) FROM newest_campaigns AS n WHERE NOT EXISTS (SELECT 1 FROM messaging.campaigns AS t WHERE t.tenant_id = 'acme' AND t.campaign_id = n.campaign_id)) AS campaigns_inserted, (SELECT COUNT(*) FROM newest_campaigns) AS campaigns_touched, (SELECT COUNT(*) FROM stage_templates) AS templates_in, (SELECT COUNT(*) FROM newest_templates AS n WHERE NOT EXISTS (SELECT 1 FROM messaging.templates AS t WHERE t.tenant_id = 'acme' AND t.template_id = n.template_id)) AS templates_inserted, (SELECT COUNT(*) FROM newest_templates) AS templates_touched;

INSERT INTO messaging.events (tenant_id, message_id, event_type, event_at, campaign_id, template_id, channel, error_code, loaded_at) SELECT 'acme', message_id, event_type, event_at, campaign_id, template_id, channel, error_code, SYSDATE FROM new_events;

MERGE INTO messaging.campaigns USING newest_campaigns AS n ON messaging.campaigns.tenant_id = 'acme' AND messaging.campaigns.campaign_id = n.campaign_id WHEN MATCHED THEN UPDATE SET name = n.name, updated_at = n.updated_at, loaded_at = SYSDATE WHEN NOT MATCHED THEN INSERT (tenant_id, campaign_id, name, updated_at, loaded_at) VALUES ('acme', n.campaign_id, n.name, n.updated_at, SYSDATE);

MERGE INTO messaging.templates USING newest_templates AS n ON messaging.templates.tenant_id = 'acme' AND messaging.templates.template_id = n.template_id WHEN MATCHED THEN UPDATE SET name = n.name, category = n.category, updated_at = n.updated_at, loaded_at = SYSDATE WHEN NOT MATCHED THEN INSERT (tenant_id, template_id, name, category, updated_at, loaded_at) VALUES ('acme', n.template_id, n.name, n.category, n.updated_at, SYSDATE);

SELECT events_in, events_inserted, events_in - events_inserted AS events_duplicate, campaigns_in, campaigns_inserted, campaigns_touched - campaigns_inserted AS campaigns_updated, templates_in, templates_inserted, templates_touched - templates_inserted AS templates_updated, (SELECT COUNT(*) FROM messaging.events WHERE tenant_id = 'acme') AS events_rows FROM merge_stats;
