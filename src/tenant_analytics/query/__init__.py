"""Semantic queries: the contract, the catalog, the planner (SQL per store dialect) and the answer cache."""
