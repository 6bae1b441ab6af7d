"""The manifest a Spark run reads: which files belong to which tenant and stream. Standard library only (Glue).

``tenants`` lists, per tenant and source stream, the raw pages landed since the tenant's last load; ``history``
lists, per tenant and stream, the curated history (Parquet) of everything landed before, which the run reads to
recompute per-ticket metrics and daily counts over the whole history, and appends this run's records to under
``history_root``. A tenant's history of a stream that spans more than ``compact_after_files`` files is rewritten
by the run into one folder instead (see ``compacting``), so that the files a run opens stay bounded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

StreamFiles = dict[str, list[str]]


@dataclass(frozen=True)
class TransformManifest:
    """Landed raw files per tenant and stream under ``raw_root/<stream>/``, and their history."""

    raw_root: str
    hour: str
    tenants: dict[str, StreamFiles] = field(default_factory=dict)
    history_root: str | None = None
    history: dict[str, StreamFiles] = field(default_factory=dict)
    batch_id: str = "batch"
    compact_after_files: int | None = None  # None: never compact

    def to_json(self) -> str:
        doc: dict[str, Any] = {
            "raw_root": self.raw_root,
            "hour": self.hour,
            "batch_id": self.batch_id,
            "tenants": self.tenants,
            "history_root": self.history_root,
            "history": self.history,
            "compact_after_files": self.compact_after_files,
        }
        return json.dumps(doc, indent=1)

    @classmethod
    def from_json(cls, text: str) -> TransformManifest:
        """Parse a manifest; raise ValueError naming the missing or mistyped field."""
        doc = json.loads(text)
        if not isinstance(doc, dict):
            raise ValueError("manifest must be a JSON object")
        for key, kind in (("raw_root", str), ("hour", str), ("tenants", dict)):
            if not isinstance(doc.get(key), kind):
                raise ValueError(f"manifest field '{key}' is missing or not a {kind.__name__}")
        history_root = doc.get("history_root")
        if history_root is not None and not isinstance(history_root, str):
            raise ValueError("manifest field 'history_root' is not a str")
        compact_after = doc.get("compact_after_files")
        if compact_after is not None and (
            isinstance(compact_after, bool) or not isinstance(compact_after, int) or compact_after < 1
        ):
            raise ValueError(f"manifest field 'compact_after_files' must be a positive integer, not {compact_after!r}")
        return cls(
            raw_root=doc["raw_root"],
            hour=doc["hour"],
            batch_id=str(doc.get("batch_id") or "batch"),
            tenants=_stream_files(doc["tenants"], "tenants"),
            history_root=history_root,
            history=_stream_files(doc.get("history") or {}, "history"),
            compact_after_files=compact_after,
        )

    def paths(self, stream: str) -> list[str]:
        """Every tenant's landed pages of ``stream``."""
        return [p for streams in self.tenants.values() for p in streams.get(stream, [])]

    def history_paths(self, stream: str) -> list[str]:
        """Every tenant's history files of ``stream``."""
        return [p for streams in self.history.values() for p in streams.get(stream, [])]

    def compacting(self, stream: str) -> dict[str, list[str]]:
        """The tenants whose history of ``stream`` this run rewrites into one folder, with the files it replaces:
        those listing more than ``compact_after_files`` files."""
        if self.compact_after_files is None or self.history_root is None:
            return {}
        return {
            tenant: files
            for tenant, streams in self.history.items()
            if len(files := streams.get(stream, [])) > self.compact_after_files
        }

    def all_uris(self) -> list[str]:
        """Every file the manifest names (landed pages and history)."""
        return [p for group in (self.tenants, self.history) for s in group.values() for ps in s.values() for p in ps]


def _stream_files(value: object, name: str) -> dict[str, StreamFiles]:
    if not isinstance(value, dict):
        raise ValueError(f"manifest field '{name}' is not a dict")
    out: dict[str, StreamFiles] = {}
    for tenant, streams in value.items():
        if not isinstance(streams, dict):
            raise ValueError(f"manifest field '{name}.{tenant}' must map stream names to lists of files")
        out[str(tenant)] = {str(s): [str(p) for p in paths] for s, paths in streams.items()}
    return out
