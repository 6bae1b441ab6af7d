"""Pure DataFrame -> DataFrame transforms and the contract of the Spark runs (manifest, output columns)."""
