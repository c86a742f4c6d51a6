"""Test and local-development tooling: never imported by a service at run time.

- :mod:`marquee_testing.fixtures` — the pytest plugin giving every test real PostgreSQL,
  Redis and a Kafka-protocol broker, isolated per test (loaded by the root ``conftest.py``);
- :mod:`marquee_testing.localinfra` — starting embedded servers (``make dev`` and tests);
- :mod:`marquee_testing.waiting` — the one :func:`wait_until`;
- :mod:`marquee_testing.relay` — the outbox relay's harness (tests, ``make bench-relay``);
- :mod:`marquee_testing.events` — the events API's factories (venues, events, people);
- :mod:`marquee_testing.search` — search engines and documents for search's tests.
"""
