UNLOAD ('SELECT tenant_id, day, sent, delivered, failed FROM models.tenant_daily_messaging WHERE tenant_id IN (''acme'', ''globex'', ''initech'')') TO 's3://tenant-analytics-curated/operational-export/run=r1/' IAM_ROLE 'arn:aws:iam::111111111111:role/redshift-unload' FORMAT AS CSV MANIFEST ENCRYPTED AUTO ALLOWOVERWRITE PARALLEL OFF;

SELECT aws_s3.table_import_from_s3(%s, %s, %s, aws_commons.create_s3_uri(%s, %s, %s));
