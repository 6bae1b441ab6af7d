CREATE SCHEMA IF NOT EXISTS models;

GRANT USAGE ON SCHEMA models TO ROLE ta_query;

CREATE RLS POLICY models_tenant_isolation WITH (tenant_id VARCHAR(63)) USING (tenant_id = current_setting('app.tenant_id', FALSE));
