"""infra/aws/template.yaml describes what infra/aws/resources.py creates, and passes cfn-lint.

Production runs on the template; `make dev` and the tests run on what `ensure_resources` builds.
A table key, a queue attribute, a notification filter or a CORS header that differs between the two
works in tests and breaks in production, so each shape is compared here, with the template read at
its parameter defaults (the values the service's Settings default to)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

# cfn-lint ships no type information; its decoder is the one that understands !Ref, !Sub and co.
from cfnlint.decode import decode_str  # type: ignore[import-untyped]

from infra.aws.resources import _ensure_bucket, _ensure_table, _queue_policy, cors_rules, table_definition
from infra.settings import Settings

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "aws" / "template.yaml"
LINT_REGIONS = ("us-east-1", "eu-west-1")
PSEUDO = {
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::StackName": "mediagraph",
    "AWS::URLSuffix": "amazonaws.com",
}
NO_VALUE = object()
TABLE_TYPES = ("AWS::DynamoDB::GlobalTable", "AWS::DynamoDB::Table")
SUB_VARIABLE = re.compile(r"\$\{([^}!]+)\}")


def load_template() -> dict[str, Any]:
    template, problems = decode_str(TEMPLATE.read_text())
    assert not problems, [str(problem) for problem in problems]
    plain: dict[str, Any] = json.loads(json.dumps(template))  # cfn-lint's node classes -> dict/list/str
    return plain


def default_settings(**overrides: Any) -> Settings:
    """Settings at their code defaults, whatever MEDIAGRAPH_* variables the shell exports."""
    names = (
        "profile",
        "aws_region",
        "aws_endpoint_url",
        "bucket",
        "table",
        "queue",
        "dlq",
        "max_receive_count",
        "queue_visibility_timeout_s",
        "upload_prefix",
        "cors_origins",
        "jwt_algorithms",
        "cursor_secret",
    )
    values: dict[str, Any] = {name: Settings.model_fields[name].default for name in names}
    return Settings(_env_file=None, jwt_secret="x" * 40, **{**values, **overrides})


class Stack:
    """The template with its parameters set: just enough of CloudFormation's intrinsic functions to
    read the properties compared here. Resource attributes stay symbolic ("<Queue.Arn>")."""

    def __init__(self, template: dict[str, Any], **parameters: str) -> None:
        self.template = template
        self.resources: dict[str, dict[str, Any]] = template["Resources"]
        self.parameters = {
            name: str(spec["Default"]) for name, spec in template["Parameters"].items() if "Default" in spec
        }
        unknown = set(parameters) - set(template["Parameters"])
        assert not unknown, f"no such parameters: {unknown}"
        self.parameters.update(parameters)

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            items = [self.resolve(item) for item in node]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, value),) = node.items()
            if key == "Ref":
                return self.ref(value)
            if key == "Fn::GetAtt":
                resource, attribute = value if isinstance(value, list) else value.split(".", 1)
                return self.get_att(resource, attribute)
            if key == "Fn::If":
                condition, when_true, when_false = value
                return self.resolve(when_true if self.condition(condition) else when_false)
            if key == "Fn::Split":
                separator, source = value
                return str(self.resolve(source)).split(separator)
            if key == "Fn::Sub":
                return self.sub(value)
            if key.startswith("Fn::"):
                raise NotImplementedError(f"{key} is not resolved by this test: extend Stack.resolve")
        resolved = {key: self.resolve(value) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not NO_VALUE}

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.parameters:
            return self.parameters[name]
        assert name in self.resources, f"Ref to unknown {name}"
        return f"<{name}>"

    def get_att(self, resource: str, attribute: str) -> str:
        assert resource in self.resources, f"GetAtt of unknown {resource}"
        return f"<{resource}.{attribute}>"

    def sub(self, value: str | list[Any]) -> str:
        text, variables = (value, {}) if isinstance(value, str) else (value[0], value[1])

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(self.resolve(variables[name]))
            if "." in name and name.split(".", 1)[0] in self.resources:
                resource, attribute = name.split(".", 1)
                return self.get_att(resource, attribute)
            return str(self.ref(name))

        return SUB_VARIABLE.sub(replace, text)

    def condition(self, name: str) -> bool:
        return self.evaluate(self.template["Conditions"][name])

    def evaluate(self, node: Any) -> bool:
        ((key, value),) = node.items()
        if key == "Condition":
            return self.condition(value)
        if key == "Fn::Equals":
            left, right = (self.resolve(item) for item in value)
            return bool(str(left) == str(right))
        if key == "Fn::Not":
            return not self.evaluate(value[0])
        if key == "Fn::And":
            return all(self.evaluate(item) for item in value)
        if key == "Fn::Or":
            return any(self.evaluate(item) for item in value)
        raise NotImplementedError(f"condition function {key}")

    def only(self, resource_type: str | tuple[str, ...]) -> tuple[str, dict[str, Any]]:
        types = (resource_type,) if isinstance(resource_type, str) else resource_type
        found = [(name, spec) for name, spec in self.resources.items() if spec["Type"] in types]
        assert len(found) == 1, f"expected one {types}, found {[name for name, _ in found]}"
        return found[0]

    def queue_named(self, queue_name: str) -> tuple[str, dict[str, Any]]:
        found = [
            (name, spec)
            for name, spec in self.resources.items()
            if spec["Type"] == "AWS::SQS::Queue"
            and self.resolve(spec["Properties"]["QueueName"]) == queue_name
        ]
        assert len(found) == 1, f"expected one queue named {queue_name}, found {[name for name, _ in found]}"
        return found[0]

    def properties(self, name: str) -> dict[str, Any]:
        resolved: dict[str, Any] = self.resolve(self.resources[name]["Properties"])
        return resolved


class RecordingClient:
    """Stands in for an aioboto3 client: every call succeeds with a canned answer and is recorded,
    so a test sees exactly the requests that infra.aws.resources would send to AWS."""

    def __init__(self, answers: dict[str, dict[str, Any]] | None = None) -> None:
        self.requests: dict[str, dict[str, Any]] = {}
        self._answers = answers or {}

    def __getattr__(self, operation: str) -> Callable[..., Awaitable[dict[str, Any]]]:
        async def call(**request: Any) -> dict[str, Any]:
            self.requests[operation] = request
            return self._answers.get(operation, {})

        return call


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture
def stack(template: dict[str, Any]) -> Stack:
    return Stack(template)


# ---------------------------------------------------------------- DynamoDB


def by_attribute(definitions: list[dict[str, str]]) -> list[dict[str, str]]:
    return sorted(definitions, key=lambda item: item["AttributeName"])


def test_table_keys_and_indexes_equal_table_definition(stack: Stack) -> None:
    name, _ = stack.only(TABLE_TYPES)
    table = stack.properties(name)
    expected = table_definition("x")

    # TableName: the template's comes from a parameter (checked against Settings below).
    assert table["KeySchema"] == expected["KeySchema"]
    assert by_attribute(table["AttributeDefinitions"]) == by_attribute(expected["AttributeDefinitions"])
    indexes = {index["IndexName"]: index for index in table["GlobalSecondaryIndexes"]}
    expected_indexes = {index["IndexName"]: index for index in expected["GlobalSecondaryIndexes"]}
    assert indexes == expected_indexes
    # Same spelling in both APIs; a provisioned table would also need throughput on every GSI.
    assert table["BillingMode"] == expected["BillingMode"] == "PAY_PER_REQUEST"


async def test_table_ttl_is_the_attribute_the_code_enables(stack: Stack) -> None:
    name, _ = stack.only(TABLE_TYPES)
    indexes = table_definition("x")["GlobalSecondaryIndexes"]
    dynamodb = RecordingClient(
        {
            "describe_time_to_live": {"TimeToLiveDescription": {"TimeToLiveStatus": "DISABLED"}},
            "describe_table": {"Table": {"GlobalSecondaryIndexes": indexes}},
        }
    )
    await _ensure_table(dynamodb, default_settings().aws)

    enabled_by_code = dynamodb.requests["update_time_to_live"]["TimeToLiveSpecification"]
    assert stack.properties(name)["TimeToLiveSpecification"] == enabled_by_code
    assert enabled_by_code == {"Enabled": True, "AttributeName": "ttl"}


def test_table_has_point_in_time_recovery_in_every_region(stack: Stack, template: dict[str, Any]) -> None:
    name, spec = stack.only(TABLE_TYPES)
    if spec["Type"] == "AWS::DynamoDB::Table":
        specs = [stack.properties(name)["PointInTimeRecoverySpecification"]]
    else:
        # With a second region configured, both replicas must carry it.
        two_regions = Stack(template, TableReplicaRegion="eu-west-1")
        replicas = two_regions.properties(name)["Replicas"]
        assert [replica["Region"] for replica in replicas] == ["us-east-1", "eu-west-1"]
        specs = [replica["PointInTimeRecoverySpecification"] for replica in replicas]
    assert specs
    assert all(item == {"PointInTimeRecoveryEnabled": True} for item in specs)


def test_default_names_equal_settings_defaults(stack: Stack) -> None:
    settings = default_settings()
    name, _ = stack.only(TABLE_TYPES)
    assert stack.properties(name)["TableName"] == settings.table
    stack.queue_named(settings.queue)
    stack.queue_named(settings.dlq)


# ---------------------------------------------------------------- SQS


def test_queue_attributes_equal_settings_defaults(stack: Stack) -> None:
    settings = default_settings()
    queue_name, _ = stack.queue_named(settings.queue)
    dlq_name, _ = stack.queue_named(settings.dlq)
    queue = stack.properties(queue_name)

    redrive = queue["RedrivePolicy"]
    assert int(redrive["maxReceiveCount"]) == Settings.model_fields["max_receive_count"].default
    assert redrive["deadLetterTargetArn"] == f"<{dlq_name}.Arn>"
    assert int(queue["VisibilityTimeout"]) == Settings.model_fields["queue_visibility_timeout_s"].default
    assert int(queue["MessageRetentionPeriod"]) == 4 * 24 * 3600  # as ensure_resources sets it


def test_queue_policy_equals_the_code_policy(stack: Stack) -> None:
    settings = default_settings()
    queue_name, _ = stack.queue_named(settings.queue)
    bucket_name, _ = stack.only("AWS::S3::Bucket")
    policy_name, _ = stack.only("AWS::SQS::QueuePolicy")
    policy = stack.properties(policy_name)

    assert policy["Queues"] == [f"<{queue_name}>"]
    bucket = stack.properties(bucket_name)["BucketName"]
    assert policy["PolicyDocument"] == _queue_policy(f"<{queue_name}.Arn>", bucket)


# ---------------------------------------------------------------- S3


async def _bucket_requests(settings: Settings, queue_arn: str) -> dict[str, dict[str, Any]]:
    s3 = RecordingClient()
    await _ensure_bucket(s3, settings.aws, queue_arn)
    assert "create_bucket" not in s3.requests  # head_bucket "succeeded": only settings are applied
    return s3.requests


async def test_bucket_notification_equals_the_code_notification(stack: Stack) -> None:
    settings = default_settings()
    queue_name, _ = stack.queue_named(settings.queue)
    bucket_name, _ = stack.only("AWS::S3::Bucket")
    requests = await _bucket_requests(settings, f"<{queue_name}.Arn>")
    by_code = requests["put_bucket_notification_configuration"]["NotificationConfiguration"]

    # CloudFormation spells the same thing differently: one Event per entry, S3Key/Rules, no Id.
    by_template = [
        {
            "QueueArn": entry["Queue"],
            "Events": [entry["Event"]],
            "Filter": {"Key": {"FilterRules": entry["Filter"]["S3Key"]["Rules"]}},
        }
        for entry in stack.properties(bucket_name)["NotificationConfiguration"]["QueueConfigurations"]
    ]
    assert set(by_code) == {"QueueConfigurations"}
    assert by_template == [
        {key: value for key, value in entry.items() if key != "Id"}
        for entry in by_code["QueueConfigurations"]
    ]
    assert by_template[0]["Filter"]["Key"]["FilterRules"] == [
        {"Name": "prefix", "Value": settings.upload_prefix}
    ]


@pytest.mark.parametrize("origins", [(), ("https://app.example.com", "https://admin.example.com")])
async def test_bucket_cors_equals_cors_rules(template: dict[str, Any], origins: tuple[str, ...]) -> None:
    stack = Stack(template, CorsOrigins=",".join(origins))
    settings = default_settings(cors_origins=origins)
    bucket_name, _ = stack.only("AWS::S3::Bucket")
    requests = await _bucket_requests(settings, "<queue>")
    by_code = requests["put_bucket_cors"]["CORSConfiguration"]["CORSRules"]
    assert by_code == cors_rules(settings.aws)

    rename = {"ExposedHeaders": "ExposeHeaders", "MaxAge": "MaxAgeSeconds", "Id": "ID"}
    by_template = [
        {rename.get(key, key): value for key, value in rule.items()}
        for rule in stack.properties(bucket_name)["CorsConfiguration"]["CorsRules"]
    ]
    assert by_template == by_code


async def test_bucket_public_access_block_equals_the_code_block(stack: Stack) -> None:
    bucket_name, _ = stack.only("AWS::S3::Bucket")
    requests = await _bucket_requests(default_settings(), "<queue>")
    by_code = requests["put_public_access_block"]["PublicAccessBlockConfiguration"]
    assert stack.properties(bucket_name)["PublicAccessBlockConfiguration"] == by_code


# ---------------------------------------------------------------- cfn-lint


def run_cfn_lint(path: Path) -> subprocess.CompletedProcess[str]:
    # The runner of this interpreter's cfn-lint (the package has no `python -m cfnlint`).
    command = [sys.executable, "-c", "from cfnlint.runner import main; main()"]
    return subprocess.run(
        [*command, "--regions", *LINT_REGIONS, "--", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_template_passes_cfn_lint() -> None:
    result = run_cfn_lint(TEMPLATE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_catches_a_broken_template(tmp_path: Path) -> None:
    # Guards the test above: a runner that lints nothing would pass anything.
    text = TEMPLATE.read_text()
    assert "SSEAlgorithm: AES256" in text
    broken = tmp_path / "template.yaml"
    broken.write_text(text.replace("SSEAlgorithm: AES256", "SSEAlgorithm: AES257"))
    result = run_cfn_lint(broken)
    assert result.returncode & 2, result.stdout + result.stderr  # bit 2: errors
    assert "AES257" in result.stdout


# ---------------------------------------------------------------- S3 lifecycle


def _lifecycle_rule_from_template(rule: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's spelling of a rule → the S3 API's (what put_bucket_lifecycle_configuration takes)."""
    converted: dict[str, Any] = {
        "ID": rule["Id"],
        "Status": rule["Status"],
        "Filter": {"Prefix": rule.get("Prefix", "")},
    }
    if "Transitions" in rule:
        converted["Transitions"] = [
            {"Days": int(t["TransitionInDays"]), "StorageClass": t["StorageClass"]}
            for t in rule["Transitions"]
        ]
    if "AbortIncompleteMultipartUpload" in rule:
        days = int(rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])
        converted["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": days}
    if "NoncurrentVersionExpiration" in rule:
        days = int(rule["NoncurrentVersionExpiration"]["NoncurrentDays"])
        converted["NoncurrentVersionExpiration"] = {"NoncurrentDays": days}
    return converted


async def test_bucket_lifecycle_equals_lifecycle_rules(stack: Stack) -> None:
    bucket_name, _ = stack.only("AWS::S3::Bucket")
    requests = await _bucket_requests(default_settings(), "<queue>")
    by_code = requests["put_bucket_lifecycle_configuration"]["LifecycleConfiguration"]["Rules"]
    by_template = [
        _lifecycle_rule_from_template(rule)
        for rule in stack.properties(bucket_name)["LifecycleConfiguration"]["Rules"]
    ]
    assert sorted(by_template, key=lambda rule: rule["ID"]) == sorted(by_code, key=lambda rule: rule["ID"])
    kinds = {key for rule in by_code for key in rule} - {"ID", "Status", "Filter"}
    assert kinds == {"Transitions", "AbortIncompleteMultipartUpload", "NoncurrentVersionExpiration"}
