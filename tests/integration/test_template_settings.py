"""The template's task definitions start: Settings built from each container's production
environment (its variables, and its secrets as ECS would hand them over) is accepted, the API's
checks pass, and the API believes X-Forwarded-For from the load balancer's subnets only.

The audit found the API task set the production profile without the session signing key that
profile requires (every task would have crash-looped) and no trusted proxies (behind the ALB every
client shared one per-IP bucket and one per-address WebSocket cap)."""

from __future__ import annotations

import ipaddress
import os
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from infra.http.client_ip import client_address, parse_networks
from infra.roots.app import create_app
from infra.settings import Settings, check_api_settings
from tests.integration.test_template_matches_resources import Stack, load_template

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:mediagraph/{}"
REQUIRED = {
    "ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/mediagraph:abc",
    "DomainName": "api.example.com",
    "HostedZoneId": "Z0000000000000",
    "CertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/x",
    "JwtJwksUrl": "https://idp.example.com/.well-known/jwks.json",
    "CursorSecretArn": ARN.format("cursor"),
    "SessionSigningKeySecretArn": ARN.format("session-key"),
    "CloudFrontPublicKeyPem": "-----BEGIN PUBLIC KEY-----\n...\n-----END PUBLIC KEY-----",
}
WITH_CLOUDFRONT_KEY = {"CloudFrontPrivateKeySecretArn": ARN.format("cf-key")}
WITH_REDIS_CLUSTER = {"RedisClusterMode": "enabled"}


def _pem(key: Any) -> str:
    pem: bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem.decode()


# What each secret holds in a real deployment (docs/deploy.md creates them).
SECRET_VALUES = {
    ARN.format("cursor"): "c" * 64,
    ARN.format("session-key"): _pem(ec.generate_private_key(ec.SECP256R1())),
    ARN.format("cf-key"): _pem(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
}


class DeployedStack(Stack):
    """Stack, plus what the tasks' environment needs resolved for real: subnet CIDRs."""

    def resolve(self, node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            ((key, value),) = node.items()
            if key == "Fn::Select":
                index, items = value
                return self.resolve(items)[int(index)]
            if key == "Fn::Cidr":
                block, count, host_bits = (self.resolve(item) for item in value)
                network = ipaddress.ip_network(block)
                subnets = network.subnets(new_prefix=network.max_prefixlen - int(host_bits))
                return [str(subnet) for _, subnet in zip(range(int(count)), subnets, strict=False)]
        return super().resolve(node)

    def get_att(self, resource: str, attribute: str) -> str:
        if self.resources.get(resource, {}).get("Type") == "AWS::EC2::Subnet" and attribute == "CidrBlock":
            return str(self.resolve(self.resources[resource]["Properties"]["CidrBlock"]))
        return super().get_att(resource, attribute)

    def container_environment(self, task_definition: str) -> dict[str, str]:
        [container] = self.properties(task_definition)["ContainerDefinitions"]
        env = {item["Name"]: str(item["Value"]) for item in container.get("Environment", [])}
        for secret in container.get("Secrets", []):
            env[secret["Name"]] = SECRET_VALUES[secret["ValueFrom"]]
        return env


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings exactly as the container reads them: from its environment alone."""
    for name in list(os.environ):
        if name.startswith("MEDIAGRAPH_") or name == "REDIS_URL":
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)


@pytest.mark.parametrize(
    "parameters",
    [REQUIRED, {**REQUIRED, **WITH_CLOUDFRONT_KEY}, {**REQUIRED, **WITH_REDIS_CLUSTER}],
    ids=["s3", "cloudfront", "redis-cluster"],
)
@pytest.mark.parametrize("task", ["ApiTaskDefinition", "WorkerTaskDefinition", "OpsTaskDefinition"])
def test_each_task_starts_from_the_templates_production_environment(
    template: dict[str, Any], parameters: dict[str, str], task: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = DeployedStack(template, **parameters)
    settings = settings_from(stack.container_environment(task), monkeypatch)
    assert settings.is_production
    # Every task talks to Redis as deployed: the cluster client at the configuration endpoint in
    # cluster mode, the primary endpoint otherwise.
    clustered = parameters.get("RedisClusterMode") == "enabled"
    assert settings.redis_cluster is clustered
    endpoint = "ConfigurationEndPoint" if clustered else "PrimaryEndPoint"
    assert settings.redis_url.startswith(f"rediss://<RedisReplicationGroup.{endpoint}.Address>:")
    if task == "ApiTaskDefinition":
        check_api_settings(settings)
        create_app(settings)  # what `mediagraph serve` builds before it listens
        # Signed read URLs: CloudFront's when its key is configured, S3's otherwise; never half.
        assert (settings.cloudfront_private_key is not None) == (
            "CloudFrontPrivateKeySecretArn" in parameters
        )
    else:
        # The worker parses untrusted files and the ops task runs one-off commands: neither holds
        # the key that mints access tokens.
        assert settings.session_signing_key is None


def test_the_api_believes_forwarded_for_from_the_load_balancers_subnets_only(
    template: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    stack = DeployedStack(template, **REQUIRED)
    settings = settings_from(stack.container_environment("ApiTaskDefinition"), monkeypatch)
    proxies = parse_networks(settings.trusted_proxies)
    alb_subnets = [name.strip("<>") for name in stack.properties("LoadBalancer")["Subnets"]]
    alb_networks = {ipaddress.ip_network(stack.get_att(name, "CidrBlock")) for name in alb_subnets}
    assert set(proxies) == alb_networks
    # Through the load balancer: each client has its own address, hence its own buckets and caps.
    alb_node = str(next(iter(sorted(alb_networks, key=str))).network_address + 10)
    assert client_address(alb_node, "198.51.100.7", proxies) == "198.51.100.7"
    assert client_address(alb_node, "198.51.100.8", proxies) == "198.51.100.8"
    # A spoofed entry left of what the load balancer appended is ignored.
    assert client_address(alb_node, "10.0.0.1, 198.51.100.7", proxies) == "198.51.100.7"
    # Anything else in the VPC (a task in a private subnet) is not a proxy.
    private = ipaddress.ip_network(stack.get_att("PrivateSubnetA", "CidrBlock"))
    task_address = str(private.network_address + 10)
    assert client_address(task_address, "198.51.100.7", proxies) == task_address


@pytest.mark.parametrize("mode", ["disabled", "enabled"])
def test_redis_cluster_mode_is_a_parameter(template: dict[str, Any], mode: str) -> None:
    stack = DeployedStack(template, **REQUIRED, RedisClusterMode=mode, RedisShards="4")
    [name] = [
        n for n, spec in stack.resources.items() if spec["Type"] == "AWS::ElastiCache::ReplicationGroup"
    ]
    group = stack.properties(name)
    assert group["ClusterMode"] == mode
    assert group["TransitEncryptionEnabled"] is True
    assert int(group["EngineVersion"].split(".")[0]) >= 7  # sharded pub/sub
    if mode == "enabled":
        assert (group["NumNodeGroups"], group["ReplicasPerNodeGroup"]) == ("4", 1)
        assert group["CacheParameterGroupName"] == "default.redis7.cluster.on"
        assert "NumCacheClusters" not in group
    else:
        assert group["NumCacheClusters"] == 2
        assert "NumNodeGroups" not in group and "CacheParameterGroupName" not in group


@pytest.mark.parametrize(("cpu", "workers"), [("512", 1), ("1024", 1), ("2048", 2), ("4096", 2)])
def test_the_api_starts_document_workers_for_its_cpu_share(
    template: dict[str, Any], monkeypatch: pytest.MonkeyPatch, cpu: str, workers: int
) -> None:
    # Fargate shows the host's cores: the count follows the task's CPU, not os.cpu_count().
    stack = DeployedStack(template, **REQUIRED, ApiCpu=cpu)
    settings = settings_from(stack.container_environment("ApiTaskDefinition"), monkeypatch)
    assert settings.effective_document_workers == workers
