"""Incremental-export clients of tenant source APIs, synthetic source data and a local fake source server."""
