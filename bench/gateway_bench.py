"""Logins per second, and what the gateway adds to a request's latency.

Starts the auth service and the gateway as uvicorn processes on 127.0.0.1 (real
PostgreSQL and Redis), then measures in one run:

* logins/s: concurrent password logins straight at auth (argon2id dominates);
* added latency: the same requests sent straight to auth and through the gateway,
  interleaved so both see the same machine load; p50/p99 of each and the difference,
  for an anonymous request and for one the gateway verifies (JWT at the edge).

Everything it starts is stopped by PID and its database dropped. Run: make bench-gateway
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from marquee_auth.main import SERVICE as AUTH
from marquee_platform.migrations import drop_database, ensure_database, upgrade_async
from marquee_testing.localinfra import free_port, stop_process, wait_for_port

PASSWORD = "correct horse battery staple"  # noqa: S105 - a throwaway bench account


FIGURES = Path(__file__).resolve().parent.parent / ".marquee" / "bench-gateway.json"
"""The request figures, for the streams bench's RESULT line (make bench-gateway)."""


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def start(app_factory: str, port: int, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "--factory",
                app_factory,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
                "--no-proxy-headers",
            ],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    wait_for_port("127.0.0.1", port, timeout=60, process=process)
    return process


async def timed(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> float:
    started = time.perf_counter()
    response = await client.get(url, headers=headers)
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.text
    return elapsed


async def logins_per_second(
    client: httpx.AsyncClient, base: str, emails: list[str], total: int, concurrency: int
) -> float:
    queue = list(range(total))

    async def worker() -> None:
        while queue:
            index = queue.pop()
            response = await client.post(
                f"{base}/api/v1/auth/login",
                json={"email": emails[index % len(emails)], "password": PASSWORD},
            )
            assert response.status_code == 200, response.text

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total / (time.perf_counter() - started)


async def main(args: argparse.Namespace) -> None:
    postgres = args.postgres_url.rstrip("/")
    database_url = f"{postgres}/bench_auth_{uuid.uuid4().hex[:8]}".replace(
        "postgresql://", "postgresql+asyncpg://"
    )
    await ensure_database(database_url)
    assert AUTH.migrations is not None
    await upgrade_async(database_url, AUTH.migrations)
    auth_port, gateway_port = free_port(), free_port()
    auth, gateway = f"http://127.0.0.1:{auth_port}", f"http://127.0.0.1:{gateway_port}"
    env = {
        "AUTH_DATABASE_URL": database_url,
        "MARQUEE_REDIS_URL": args.redis_url,
        "MARQUEE_KAFKA_BOOTSTRAP": "127.0.0.1:1",  # readiness only; not measured here
        "MARQUEE_JWKS_URL": f"{auth}/.well-known/jwks.json",
        "MARQUEE_LOG_LEVEL": "WARNING",
        "GATEWAY_SERVICE_URLS": json.dumps({"auth": auth}),
        "GATEWAY_RATE_LIMITS_ENABLED": "false",
    }
    logs = Path(tempfile.mkdtemp(prefix="marquee-gateway-bench-"))
    processes = []
    try:
        processes.append(start("marquee_auth.main:create_app", auth_port, env, logs / "auth.log"))
        processes.append(
            start("marquee_gateway.main:create_app", gateway_port, env, logs / "gateway.log")
        )
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(timeout=30, limits=limits, trust_env=False) as client:
            emails = [f"bench-{uuid.uuid4().hex[:8]}@example.org" for _ in range(args.users)]
            for email in emails:
                response = await client.post(
                    f"{auth}/api/v1/auth/register", json={"email": email, "password": PASSWORD}
                )
                assert response.status_code == 201, response.text
            token = (
                await client.post(
                    f"{auth}/api/v1/auth/login", json={"email": emails[0], "password": PASSWORD}
                )
            ).json()["access_token"]

            print(f"logins: {args.logins} with {args.concurrency} concurrent clients …")
            direct_rate = await logins_per_second(
                client, auth, emails, args.logins, args.concurrency
            )
            gateway_rate = await logins_per_second(
                client, gateway, emails, args.logins, args.concurrency
            )

            rows = []
            cases = {
                "anonymous GET jwks.json": ("/api/v1/auth/.well-known/jwks.json", {}),
                "signed-in GET /me (JWT verified)": (
                    "/api/v1/auth/me",
                    {"Authorization": f"Bearer {token}"},
                ),
            }
            for label, (path, headers) in cases.items():
                for _ in range(50):  # warm both paths' pools and caches
                    await timed(client, auth + path, headers)
                    await timed(client, gateway + path, headers)
                direct: list[float] = []
                through: list[float] = []
                for _ in range(args.requests):
                    direct.append(await timed(client, auth + path, headers))
                    through.append(await timed(client, gateway + path, headers))
                rows.append((label, direct, through))
    finally:
        for process in reversed(processes):
            stop_process(process)
        await drop_database(database_url)

    print()
    print(f"logins/s straight to auth : {direct_rate:8.1f}")
    print(f"logins/s through gateway  : {gateway_rate:8.1f}")
    print()
    header = f"{'request':34} {'direct p50':>10} {'p99':>7} {'gateway p50':>11} {'p99':>7}"
    print(header + f" {'added p50':>9} {'added p99':>9} {'ratio p50':>9}")
    print("-" * (len(header) + 30))
    for label, direct, through in rows:
        d50, d99 = percentile(direct, 0.5) * 1000, percentile(direct, 0.99) * 1000
        g50, g99 = percentile(through, 0.5) * 1000, percentile(through, 0.99) * 1000
        added = [(g - d) * 1000 for d, g in zip(direct, through, strict=True)]
        print(
            f"{label:34} {d50:8.2f}ms {d99:5.2f}ms {g50:9.2f}ms {g99:5.2f}ms"
            f" {statistics.median(added):7.2f}ms {percentile(added, 0.99):7.2f}ms"
            f" {g50 / d50:8.2f}x"
        )
    print(f"\n({args.requests} interleaved requests per path; logs in {logs})")
    # make bench-gateway ends with the streams bench; it prints one RESULT line for both.
    added = [
        (g - d) * 1000 for _, direct, through in rows for d, g in zip(direct, through, strict=True)
    ]
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(
        json.dumps(
            {
                "logins_per_s": round(direct_rate, 1),
                "gateway_logins_per_s": round(gateway_rate, 1),
                "added_p50_ms": round(statistics.median(added), 2),
                "added_p99_ms": round(percentile(added, 0.99), 2),
            }
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--logins", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=2000)
    asyncio.run(main(parser.parse_args()))
