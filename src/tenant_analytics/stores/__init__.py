"""Analytics stores (Aurora PostgreSQL, Redshift, local PostgreSQL) behind one protocol."""
