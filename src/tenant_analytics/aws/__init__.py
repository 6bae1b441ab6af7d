"""AWS client construction: lazily created, cached, never at import time."""
