"""Tenant registry, placement and capacity model."""
