"""The fleet's part of repo-template/aws/cronsync-host.yaml (cfn-lint runs on the whole
template in test_aws_templates.py): the table as the agent uses it, and a role that may
make only the fleet's calls, on that table only, each on its own items."""

from __future__ import annotations

from typing import Any

import pytest
from test_aws_templates import _load_template, _statements


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return _load_template()


def test_the_table_is_optional_on_demand_with_ttl_and_recovery(template: dict[str, Any]) -> None:
    assert template["Parameters"]["FleetTableName"]["Default"] == ""
    table = template["Resources"]["FleetTable"]
    assert table["Condition"] == "HasFleet"
    assert table["DeletionPolicy"] == "Retain"  # tokens never restart
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    output = template["Outputs"]["FleetTableName"]
    assert (output["Condition"], output["Value"]) == ("HasFleet", {"Ref": "FleetTable"})


def test_the_role_uses_only_the_fleet_s_calls_on_its_own_items(template: dict[str, Any]) -> None:
    fleet = {
        s["Sid"]: s
        for s in _statements(template)
        if any(a.startswith("dynamodb:") for a in s["Action"])
    }
    assert set(fleet) == {"FleetLeases", "FleetStatus"}
    leases, status = fleet["FleetLeases"], fleet["FleetStatus"]
    assert sorted(leases["Action"]) == ["dynamodb:GetItem", "dynamodb:UpdateItem"]
    assert sorted(status["Action"]) == ["dynamodb:PutItem", "dynamodb:Query"]
    for statement in (leases, status):
        assert statement["Effect"] == "Allow"
        assert statement["Resource"] == {"Fn::GetAtt": ["FleetTable", "Arn"]}
    assert leases["Condition"] == {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["job#*"]}}
    assert status["Condition"] == {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["host"]}}
