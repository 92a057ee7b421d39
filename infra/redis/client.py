"""The Redis client of the process: one node, or a Redis Cluster (MEDIAGRAPH_REDIS_CLUSTER).

Both clients take the same commands; what differs is how keys and pub/sub spread over a
cluster's nodes (infra/redis/keys.py, infra/redis/bus.py)."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import RedisCluster

from infra.settings import RedisConfig

RedisClient = Redis | RedisCluster


def open_redis(config: RedisConfig) -> RedisClient:
    if config.cluster:
        # The cluster client discovers every node from the one named, follows MOVED/ASK on
        # resharding and failover, and sends each command (and each script, by its first
        # key) to the node of its slot. Its per-node pool cannot wait for a free connection
        # (redis-py 8.2): past the cap a command fails like an unreachable Redis, which every
        # adapter already survives (docs/operations.md, "Redis connections").
        return RedisCluster.from_url(
            config.url, health_check_interval=30, max_connections=config.max_connections
        )
    # redis-py's default pool raises MaxConnectionsError the moment its 100 connections are in
    # use: under a burst of requests (each doing a few concurrent commands) reads failed with
    # INTERNAL_SERVER_ERROR and the rate limiter fell back to local buckets. The blocking pool
    # queues the command until a connection is free, up to the timeout.
    pool = BlockingConnectionPool.from_url(
        config.url,
        max_connections=config.max_connections,
        timeout=config.pool_timeout_s,
        health_check_interval=30,
    )
    return Redis.from_pool(pool)


def is_cluster(redis: RedisClient) -> bool:
    return isinstance(redis, RedisCluster)
