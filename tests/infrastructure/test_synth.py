"""The app synthesizes every stack offline, and cdk-nag finds nothing unacknowledged."""

from __future__ import annotations

import pytest

from .synthesis import STACKS, SynthResult

pytestmark = pytest.mark.xdist_group(name="cdk-synth")


def test_app_synthesizes_every_stack(synth: SynthResult) -> None:
    # Given the app run once by the session fixture
    # Then it succeeded and wrote a template with resources for each stack
    assert synth.returncode == 0, synth.output[-5000:]
    assert sorted(synth.templates) == sorted(STACKS)
    for stack, template in synth.templates.items():
        assert template.get("Resources"), f"{stack} has no resources"


def test_cdk_nag_reports_no_unacknowledged_findings(synth: SynthResult) -> None:
    # Given the validation report of the synthesis (cdk-nag AwsSolutions and CloudFormation checks)
    report = synth.validation_report()
    # When we collect every violation that was not acknowledged
    findings = [
        f"{plugin['pluginName']} {violation['severity']} {violation['ruleName']} at {construct['constructPath']}"
        for plugin in report.get("pluginReports", [])
        for violation in plugin.get("violations", [])
        for construct in violation.get("violatingConstructs", [])
    ]
    # Then there are none, and synthesis was not stopped by validation
    assert findings == [], "\n".join(findings)
    assert "ValidationFailed" not in synth.output


def test_every_acknowledgment_is_recorded_with_a_reason(synth: SynthResult) -> None:
    # Given the cdk_nag metadata the AwsSolutions pack writes next to each acknowledged resource
    acknowledged = {
        (rule["id"], rule["reason"])
        for template in synth.templates.values()
        for resource in template["Resources"].values()
        for rule in resource.get("Metadata", {}).get("cdk_nag", {}).get("rules_to_suppress", [])
    }
    # Then the pack ran (acknowledgments exist) and each names a reason of substance
    assert {rule_id.split("[")[0] for rule_id, _ in acknowledged} >= {"AwsSolutions-IAM5", "AwsSolutions-L1"}
    short = sorted(rule_id for rule_id, reason in acknowledged if len(reason) < 40)
    assert short == [], f"acknowledgments without a real reason: {short}"
