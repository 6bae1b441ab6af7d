"""The embedded runner: PostgreSQL, moto, local Spark and a local API server, as one machine stands in for AWS."""
