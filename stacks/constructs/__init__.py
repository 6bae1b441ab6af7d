"""Reusable constructs: each builds one capability of the platform."""
