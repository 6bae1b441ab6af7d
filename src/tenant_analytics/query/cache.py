"""Answer cache keyed by (tenant, normalised query, tenant data_version): a load makes old answers unreachable."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

from tenant_analytics.query.contract import Answer


def cache_key(tenant_id: str, normalized_query: str, data_version: int) -> str:
    """The key of one answer; the tenant id and data version are part of it, never only of the value."""
    digest = hashlib.sha256(normalized_query.encode()).hexdigest()
    return f"{tenant_id}#{data_version}#{digest}"


class AnswerCache:
    """An in-process LRU of answers (thread-safe)."""

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[str, Answer] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Answer | None:
        with self._lock:
            answer = self._entries.get(key)
            if answer is not None:
                self._entries.move_to_end(key)
            return answer

    def put(self, key: str, answer: Answer) -> None:
        with self._lock:
            self._entries[key] = answer
            self._entries.move_to_end(key)
            while len(self._entries) > self._capacity:
                self._entries.popitem(last=False)
