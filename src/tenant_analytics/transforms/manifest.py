"""The manifest a Spark run reads: which landed files belong to which tenant. Standard library only (Glue)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TransformManifest:
    """Landed raw files per tenant, under a common root (the partition base path)."""

    raw_root: str
    hour: str
    tenants: dict[str, list[str]] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"raw_root": self.raw_root, "hour": self.hour, "tenants": self.tenants}, indent=1)

    @classmethod
    def from_json(cls, text: str) -> TransformManifest:
        """Parse a manifest; raise ValueError naming the missing or mistyped field."""
        doc = json.loads(text)
        if not isinstance(doc, dict):
            raise ValueError("manifest must be a JSON object")
        for key, kind in (("raw_root", str), ("hour", str), ("tenants", dict)):
            if not isinstance(doc.get(key), kind):
                raise ValueError(f"manifest field '{key}' is missing or not a {kind.__name__}")
        tenants = {str(t): [str(p) for p in paths] for t, paths in doc["tenants"].items()}
        return cls(raw_root=doc["raw_root"], hour=doc["hour"], tenants=tenants)

    @property
    def paths(self) -> list[str]:
        return [p for paths in self.tenants.values() for p in paths]
