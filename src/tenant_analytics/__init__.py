"""Multi-tenant analytics platform: core package shared by Lambda, Glue, the local runner and the CLI."""

__version__ = "0.1.0"
