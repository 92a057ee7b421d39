"""The Redis client of the process: one node, or a Redis Cluster (MEDIAGRAPH_REDIS_CLUSTER).

Both clients take the same commands; what differs is how keys and pub/sub spread over a
cluster's nodes (infra/redis/keys.py, infra/redis/bus.py)."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

RedisClient = Redis | RedisCluster


def open_redis(url: str, *, cluster: bool) -> RedisClient:
    if cluster:
        # The cluster client discovers every node from the one named, follows MOVED/ASK on
        # resharding and failover, and sends each command (and each script, by its first
        # key) to the node of its slot.
        return RedisCluster.from_url(url, health_check_interval=30)
    return Redis.from_url(url, health_check_interval=30)


def is_cluster(redis: RedisClient) -> bool:
    return isinstance(redis, RedisCluster)
