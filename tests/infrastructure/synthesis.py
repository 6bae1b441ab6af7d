"""One synthesis of the CDK app (as `python app.py` runs it) and helpers to read what it wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aws_cdk.assertions import Template

REPO = Path(__file__).resolve().parents[2]
STACKS = (
    "DataLake",
    "Network",
    "TenantRegistry",
    "Warehouse",
    "Ingestion",
    "Pipeline",
    "QueryApi",
    "Monitoring",
)


@dataclass
class SynthResult:
    """The cloud assembly of one `python app.py` run."""

    outdir: Path
    returncode: int
    output: str
    templates: dict[str, dict[str, Any]] = field(default_factory=dict)

    def template(self, stack: str) -> Template:
        """The assertions Template of ``TenantAnalytics-<stack>``."""
        return Template.from_json(self.templates[stack])

    def resources(self, resource_type: str) -> list[tuple[str, str, dict[str, Any]]]:
        """(stack, logical id, resource) for every resource of ``resource_type`` in any stack."""
        return [
            (stack, logical_id, resource)
            for stack, template in self.templates.items()
            for logical_id, resource in template.get("Resources", {}).items()
            if resource["Type"] == resource_type
        ]

    def validation_report(self) -> dict[str, Any]:
        """The CDK validation report (cdk-nag and CloudFormation checks), empty when none was written."""
        path = self.outdir / "validation-report.json"
        return json.loads(path.read_text()) if path.is_file() else {}


def synthesize(outdir: Path) -> SynthResult:
    """Run app.py into ``outdir`` (no network, no Docker, no CLI) and load the templates it wrote."""
    env = {**os.environ, "CDK_OUTDIR": str(outdir), "JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION": "1"}
    done = subprocess.run(
        [sys.executable, "app.py"], cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    result = SynthResult(outdir=outdir, returncode=done.returncode, output=done.stdout + done.stderr)
    for stack in STACKS:
        path = outdir / f"TenantAnalytics-{stack}.template.json"
        if path.is_file():
            result.templates[stack] = json.loads(path.read_text())
    return result


def as_list(value: Any) -> list[Any]:
    """A policy field that may hold one value or a list, as a list."""
    return value if isinstance(value, list) else [value]


def policy_text(value: Any) -> str:
    """A template value as text: strings as they are, joins joined, the partition reference written <partition>."""
    if isinstance(value, str):
        return value
    if value == {"Ref": "AWS::Partition"}:
        return "<partition>"
    if isinstance(value, dict) and "Fn::Join" in value:
        delimiter, parts = value["Fn::Join"]
        return str(delimiter).join(policy_text(part) for part in parts)
    return json.dumps(value)
