"""Answer cache keyed by (tenant, normalised query, tenant data_version): a load makes old answers unreachable.

Two layers: an in-process LRU per container in front of a DynamoDB table shared by every container. Entries
need no invalidation (a new data_version is a new key); a TTL only reclaims space.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from tenant_analytics import constants as c
from tenant_analytics.query.contract import Answer


def cache_key(tenant_id: str, normalized_query: str, data_version: int) -> str:
    """The key of one answer; the tenant id and data version are part of it, never only of the value."""
    digest = hashlib.sha256(normalized_query.encode()).hexdigest()
    return f"{tenant_id}#{data_version}#{digest}"


class AnswerStore(Protocol):
    def get(self, key: str) -> Answer | None: ...

    def put(self, key: str, answer: Answer) -> None: ...


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


class DynamoAnswerCache:
    """The shared layer: one item per answer. Unavailable means a miss, never an error for the caller."""

    def __init__(
        self,
        dynamodb: Any,
        table_name: str,
        *,
        ttl_seconds: int = 7 * 24 * 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._table = dynamodb.Table(table_name)
        self._ttl = ttl_seconds
        self._clock = clock

    def get(self, key: str) -> Answer | None:
        try:
            item = self._table.get_item(Key={c.CACHE_TABLE_KEY: key}).get("Item")
        except (ClientError, BotoCoreError):
            return None
        if item is None or int(item.get(c.CACHE_TTL_ATTRIBUTE, 0)) < self._clock():
            return None  # DynamoDB deletes expired items lazily: an expired one is a miss
        return Answer.model_validate_json(str(item["answer"]))

    def put(self, key: str, answer: Answer) -> None:
        item = {
            c.CACHE_TABLE_KEY: key,
            "answer": answer.model_dump_json(),
            c.CACHE_TTL_ATTRIBUTE: int(self._clock()) + self._ttl,
        }
        try:
            self._table.put_item(Item=item)
        except (ClientError, BotoCoreError):
            return  # a cache that cannot be written is a slower API, not a broken one


class TieredAnswerCache:
    """LRU first, then the shared table; a shared hit is copied into the LRU."""

    def __init__(self, local: AnswerCache, shared: AnswerStore) -> None:
        self._local = local
        self._shared = shared

    def get(self, key: str) -> Answer | None:
        answer = self._local.get(key)
        if answer is None:
            answer = self._shared.get(key)
            if answer is not None:
                self._local.put(key, answer)
        return answer

    def put(self, key: str, answer: Answer) -> None:
        self._local.put(key, answer)
        self._shared.put(key, answer)
