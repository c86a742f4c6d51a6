"""localstripe (PyPI), a fake Stripe server, run on 127.0.0.1 for the Stripe adapter's tests.

localstripe's own command line binds every interface (``::``) with no host option and
keeps its data in ``/tmp/localstripe.pickle``, shared by every copy running on the
machine. So we start it as ``python -m marquee_testing.localstripe --port N``: this module
serves localstripe's aiohttp app on 127.0.0.1 only, keeps the data in memory, and runs in
its own process group, stopped by its PID like every other server we start.

What localstripe 1.15.10 does, measured against stripe 16:

- PaymentIntents: create, retrieve, update, confirm (``pm_card_visa`` and friends work,
  but ``payment_method`` is refused *on confirm*: set it with an update first), cancel
  (400 on an intent that cannot be canceled, without Stripe's error code), refunds.
  ``latest_charge`` comes back as the whole charge, not an id.
- Charges have no Radar ``outcome`` and no ``payment_method_details``: no risk level or
  score, no card fingerprint (only the PaymentMethod object has one).
- Idempotency keys are ignored: the same key twice makes two intents.
- Lists paginate (``limit``, ``starting_after``, ``has_more``) but refuse filters Stripe
  has: ``created`` on PaymentIntents (400 "Unexpected created"), on refunds a 500.
- It rejects ``description`` on PaymentIntents and ``reason`` on refunds (400 "Unexpected
  …"), both of which Stripe accepts.
- Webhooks: only ``payment_intent.succeeded`` and ``payment_intent.payment_failed`` among
  payment events (never ``payment_intent.canceled``, ``charge.refunded``, disputes), each
  signed like Stripe (``t=…,v1=…``), sent once one second after the change, never
  retried, to every endpoint registered at ``/_config/webhooks/<name>``.
- No Checkout Sessions, no Prices.

``fill_gaps=True`` (the default) teaches the fake the three things the adapter sends that
real Stripe accepts: ``description`` on PaymentIntents, ``reason`` on refunds and the
``created`` filter (``gt``/``gte``/``lt``/``lte``) on both lists. Those fills follow the
API reference; ``fill_gaps=False`` runs localstripe untouched, which is how the tests
record what it does on its own. Idempotency is deliberately not filled: a fake replaying
keys would prove nothing about the adapter (its tests check the header is sent).
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import logging
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from marquee_testing.localinfra import (
    StartedServer,
    _parent_death_hook,
    free_port,
    stop_process,
    wait_for_port,
)

LOCALSTRIPE_API_KEY = "sk_test_marquee_localstripe"
"""localstripe accepts any key that starts with ``sk_``."""

_REQUEST_TIMEOUT_SECONDS = 10.0


class LocalStripeRefused(RuntimeError):
    """localstripe's configuration endpoint answered with an error."""


@dataclass
class LocalStripe(StartedServer):
    """A localstripe server we started on 127.0.0.1 (and so must stop)."""

    port: int = 0
    api_key: str = LOCALSTRIPE_API_KEY
    fills_gaps: bool = True

    @property
    def url(self) -> str:
        """The API base for ``StripeClient(base_addresses={"api": url})``."""
        return f"http://127.0.0.1:{self.port}"

    def register_webhook(
        self, name: str, *, url: str, secret: str, events: Sequence[str] | None = None
    ) -> None:
        """Have localstripe post its signed webhooks to ``url``, signed with ``secret``.

        Registering ``name`` again replaces it. ``events`` limits the event types sent;
        localstripe sends each event to every registered endpoint that wants it.
        """
        body: dict[str, Any] = {"url": url, "secret": secret}
        if events is not None:
            body["events"] = list(events)
        self._request("POST", f"/_config/webhooks/{name}", body)

    def clear(self) -> None:
        """Forget every object (registered webhooks stay)."""
        self._request("DELETE", "/_config/data", None)

    def _request(self, method: str, path: str, body: dict[str, Any] | None) -> None:
        connection = http.client.HTTPConnection(
            "127.0.0.1", self.port, timeout=_REQUEST_TIMEOUT_SECONDS
        )
        try:
            payload = json.dumps(body).encode() if body is not None else None
            headers = {"Content-Type": "application/json"} if payload is not None else {}
            connection.request(method, path, body=payload, headers=headers)
            response = connection.getresponse()
            text = response.read().decode(errors="replace")
        finally:
            connection.close()
        if response.status >= 300:
            raise LocalStripeRefused(f"{method} {path} answered {response.status}: {text[:500]}")


def start_localstripe(
    port: int | None = None,
    *,
    log_dir: Path | None = None,
    fill_gaps: bool = True,
    die_with_parent: bool | None = None,
    timeout: float = 30.0,
) -> LocalStripe:
    """Start localstripe on 127.0.0.1 (a free port unless given) and wait until it answers."""
    port = port or free_port()
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix="marquee-localstripe-"))
    log_path = log_dir / f"localstripe-{port}.log"
    command = [sys.executable, "-m", "marquee_testing.localstripe", "--port", str(port)]
    if fill_gaps:
        command.append("--fill-gaps")
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_parent_death_hook(signal.SIGTERM, die_with_parent),
        )
    server = LocalStripe(process=process, log_path=log_path, port=port, fills_gaps=fill_gaps)
    try:
        wait_for_port("127.0.0.1", port, timeout=timeout, process=process)
        _check_it_is_localstripe(server)
    except BaseException as error:
        stop_process(process)
        if isinstance(error, RuntimeError | TimeoutError | OSError):
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"localstripe did not start; its log ends:\n{tail}") from error
        raise
    return server


@contextlib.contextmanager
def running_localstripe(
    *, log_dir: Path | None = None, fill_gaps: bool = True
) -> Iterator[LocalStripe]:
    """localstripe for the length of a ``with`` block, stopped (by PID) at its end."""
    server = start_localstripe(log_dir=log_dir, fill_gaps=fill_gaps)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def localstripe_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStripe]:
    """One localstripe per test session (per xdist worker), gaps filled. Tests share it:
    make your own objects and find them by id, never count everything it holds."""
    with running_localstripe(log_dir=tmp_path_factory.mktemp("localstripe")) as server:
        yield server


def _check_it_is_localstripe(server: LocalStripe) -> None:
    """The port is open; make sure it is our localstripe answering (the free port could
    have been taken by someone else in between)."""
    connection = http.client.HTTPConnection(
        "127.0.0.1", server.port, timeout=_REQUEST_TIMEOUT_SECONDS
    )
    try:
        connection.request(
            "GET",
            "/v1/payment_intents/pi_marquee_readiness_check",
            headers={"Authorization": f"Bearer {server.api_key}"},
        )
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    if response.status != 404 or b"Not Found" not in body:
        raise RuntimeError(
            f"port {server.port} answered {response.status}, not like localstripe: {body[:200]!r}"
        )


# ---- inside the localstripe process ----------------------------------------------------------


def _serve(port: int, *, fill_gaps: bool) -> None:
    from aiohttp import web
    from localstripe import resources, server

    # One shared pickle for every localstripe on the machine: never write it.
    resources.Store.dump_to_disk = _keep_in_memory
    if fill_gaps:
        _fill_gaps(resources)
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(message)s")
    web.run_app(
        server.app,
        host="127.0.0.1",
        port=port,
        access_log=logging.getLogger("aiohttp.access"),
        print=None,
    )


def _keep_in_memory(store: Any) -> None:
    """localstripe's ``Store.dump_to_disk``, replaced."""


def _fill_gaps(resources: Any) -> None:
    """Make localstripe accept what real Stripe accepts and the adapter sends (see the
    module's docstring)."""
    user_error = resources.UserError

    payment_intent_init = resources.PaymentIntent.__init__

    def payment_intent_with_description(
        self: Any, description: str | None = None, **fields: Any
    ) -> None:
        if description is not None and not isinstance(description, str):
            raise user_error(400, "Invalid description")
        payment_intent_init(self, **fields)
        self.description = description

    resources.PaymentIntent.__init__ = payment_intent_with_description

    refund_init = resources.Refund.__init__
    refund_reasons = {"duplicate", "fraudulent", "requested_by_customer"}

    def refund_with_reason(self: Any, reason: str | None = None, **fields: Any) -> None:
        if reason is not None and reason not in refund_reasons:
            raise user_error(400, f"Invalid reason: must be one of {sorted(refund_reasons)}")
        refund_init(self, **fields)
        self.reason = reason

    resources.Refund.__init__ = refund_with_reason

    for resource in (resources.PaymentIntent, resources.Refund):
        _add_created_filter(resource, user_error)


def _add_created_filter(resource: Any, user_error: Any) -> None:
    list_all = resource._api_list_all  # bound to the class: called without it below

    def list_with_created(cls: Any, /, url: Any, created: Any = None, **query: Any) -> Any:
        bounds = _created_bounds(created, user_error)
        listing = list_all(url, **query)
        listing._list = [
            item
            for item in listing._list
            if all(_compare(operator, item.created, bound) for operator, bound in bounds)
        ]
        return listing

    resource._api_list_all = classmethod(list_with_created)


def _created_bounds(created: Any, user_error: Any) -> list[tuple[str, int]]:
    if created is None:
        return []
    pairs = created.items() if isinstance(created, dict) else [("eq", created)]
    bounds = []
    for operator, value in pairs:
        if operator not in {"eq", "gt", "gte", "lt", "lte"}:
            raise user_error(400, f"Invalid created[{operator}]")
        try:
            bounds.append((operator, int(value)))
        except (TypeError, ValueError):
            raise user_error(400, f"Invalid created[{operator}]: {value!r}") from None
    return bounds


def _compare(operator: str, created: int, bound: int) -> bool:
    return {
        "eq": created == bound,
        "gt": created > bound,
        "gte": created >= bound,
        "lt": created < bound,
        "lte": created <= bound,
    }[operator]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="localstripe on 127.0.0.1, data in memory")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--fill-gaps",
        action="store_true",
        help="accept description, refund reason and created filters like Stripe",
    )
    arguments = parser.parse_args(argv)
    _serve(arguments.port, fill_gaps=arguments.fill_gaps)


if __name__ == "__main__":
    main()
