"""``marquee simulate onsale``: the on-sale model keeps its books, answers what can be
worked out by hand, and names the step that runs out first (docs/scaling.md)."""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ElementTree
from dataclasses import fields
from pathlib import Path

import pytest
from typer.testing import CliRunner

from marquee_cli.main import app as marquee
from marquee_cli.simulate import (
    Costs,
    Deployment,
    Outcome,
    Scenario,
    busiest_consumer_share,
    crc16_xmodem,
    hottest_shard_share,
    kafka_murmur2,
    kafka_partition,
    redis_slot,
    sellout_svg,
    simulate_onsale,
)

PATIENT_FANS = Costs().overridden(
    {
        "abandon_before_hold": 0,
        "abandon_after_hold": 0,
        "abandon_checkout": 0,
        "queue_abandon_per_minute": 0,
    }
)
"""Nobody gives up: no hold lapses, so the sale ends when the crowd has been served."""

SMALL = Scenario(fans=100_000, places=5_000, arrival_minutes=1)


def run(scenario: Scenario = SMALL, costs: Costs = PATIENT_FANS, **replicas: int) -> Outcome:
    named = {name.replace("_", "-"): count for name, count in replicas.items()}
    return simulate_onsale(scenario, Deployment().with_replicas(named), costs)


# ---- the books balance --------------------------------------------------------------------

LAPSING = (
    # one key per event and a slow inventory consumer: paid orders wait for the sale
    # longer than their hold lasts, so holds lapse, late payments are honoured or refunded
    SMALL,
    Costs().overridden({"inventory_consumer_ms": 250}),
    {"sections": 1},
)


@pytest.mark.parametrize(
    ("scenario", "costs", "replicas"),
    [(SMALL, Costs(), {}), (SMALL, PATIENT_FANS, {"payments": 1}), LAPSING],
    ids=["planned", "payments-starved", "holds-lapse-before-the-sale"],
)
def test_every_place_is_available_held_or_sold_and_never_sold_twice(
    scenario: Scenario, costs: Costs, replicas: dict[str, int]
) -> None:
    outcome = simulate_onsale(scenario, Deployment().with_replicas(replicas), costs)
    for sample in outcome.samples:
        assert sample.available + sample.held + sample.sold == scenario.places, sample
        assert min(sample.available, sample.held, sample.sold) >= 0, sample
        assert sample.issued <= sample.sold <= scenario.places, sample
    assert outcome.sold == scenario.places
    assert outcome.samples[-1].issued == scenario.places
    assert outcome.buyers * scenario.places_per_fan >= scenario.places


def test_the_lapsing_scenario_really_exercises_late_payments() -> None:
    scenario, costs, replicas = LAPSING
    outcome = simulate_onsale(scenario, Deployment().with_replicas(replicas), costs)
    assert outcome.late_honoured > 0
    assert outcome.refunded > 0
    assert outcome.expired_places > 0


def test_every_fan_is_accounted_for() -> None:
    outcome = run(SMALL, Costs())
    accounted = outcome.admitted + outcome.left_queue + outcome.turned_away
    assert accounted == pytest.approx(SMALL.fans, rel=1e-6)
    assert outcome.buyers <= outcome.admitted


def test_the_sell_out_curve_never_goes_down() -> None:
    outcome = run(SMALL, Costs())
    pairs = list(zip(outcome.samples, outcome.samples[1:], strict=False))
    assert all(later.t > earlier.t for earlier, later in pairs)
    for attribute in ("sold", "issued", "admitted", "arrived"):
        values = [getattr(sample, attribute) for sample in outcome.samples]
        assert values == sorted(values), attribute


# ---- answers worked out by hand -----------------------------------------------------------


def test_a_tiny_on_sale_sells_out_when_the_last_admitted_fan_has_paid() -> None:
    """1,000 fans, 100 places, one each, admitted 600 a minute (10 a second): the waiting
    room admits the 100th fan after 10 s (never more fans than places); that fan holds 10 s
    later, orders 10 s after that, pays 45 s later, Stripe's webhook comes 2 s after, and
    inventory sells the place one step later: 10 + 10 + 10 + 45 + 2 + 1 = 78 s."""
    costs = PATIENT_FANS
    outcome = run(
        Scenario(fans=1_000, places=100, places_per_fan=1, arrival_minutes=0),
        costs,
        admission=600,
    )
    by_hand = (
        100 / (600 / 60)
        + costs.think_admit_to_hold_s
        + costs.think_hold_to_order_s
        + costs.think_order_to_pay_s
        + costs.provider_confirm_s
        + 1
    )
    assert by_hand == 78
    assert outcome.sold_out_s == pytest.approx(by_hand, abs=1)
    assert outcome.admitted == 100  # adaptive admission: never more fans than places
    assert outcome.buyers == 100
    assert outcome.peak_queue == pytest.approx(1_000, abs=1)
    assert outcome.first_bottleneck == "admission"
    assert outcome.wait_p50_s == pytest.approx(5, abs=1)  # admitted over seconds 1..10
    assert outcome.wait_p99_s == pytest.approx(10, abs=1)


def test_a_stripe_rate_limit_paces_the_sale_as_arithmetic_says() -> None:
    """4,000 orders at 2 Stripe requests each through 100 requests/s take 80 s of Stripe."""
    outcome = run(Scenario(fans=50_000, places=8_000, arrival_minutes=0.5), stripe=100)
    assert outcome.first_bottleneck == "stripe"
    first_pay = next(s.t for s in outcome.samples if s.sold) - PATIENT_FANS.provider_confirm_s
    assert outcome.sold_out_s is not None
    assert outcome.sold_out_s - first_pay == pytest.approx(80, abs=4)


# ---- capacity and the first bottleneck ----------------------------------------------------


def test_more_of_the_bottleneck_never_makes_the_sale_slower() -> None:
    runs = [run(payments=count) for count in (1, 2, 4, 8, 16, 32)]
    assert runs[0].first_bottleneck == "payments"
    sold_out = [outcome.sold_out_s or math.inf for outcome in runs]
    assert sold_out == sorted(sold_out, reverse=True)
    half = [outcome.sold_by(0.5) or math.inf for outcome in runs]
    assert half == sorted(half, reverse=True)
    # one payments process: 2,500 orders x 33 ms is over 80 s of its CPU
    assert sold_out[0] - sold_out[-1] > 60


def test_the_bottleneck_moves_when_its_step_gets_more_replicas() -> None:
    starved = run(payments=1)
    assert starved.first_bottleneck == "payments"
    fed = run(payments=64)
    assert fed.first_bottleneck != "payments"
    assert fed.pools["payments"].first_exhausted is None


def test_one_key_per_event_makes_more_consumers_useless_and_sections_help() -> None:
    """Today an event's order-paid messages share one key, so one inventory consumer sells
    the whole stadium however many replicas there are; split by section, they spread."""
    slow = PATIENT_FANS.overridden({"inventory_consumer_ms": 60})
    one_key = [run(SMALL, slow, sections=1, inventory_consumer=n) for n in (1, 16)]
    assert [o.first_bottleneck for o in one_key] == ["inventory-consumer"] * 2
    assert one_key[0].sold_out_s == one_key[1].sold_out_s
    split = run(SMALL, slow, sections=40, inventory_consumer=48)
    assert split.pools["inventory-consumer"].first_exhausted is None
    assert (split.sold_out_s or math.inf) < (one_key[0].sold_out_s or math.inf)


def test_the_whole_stadium_on_one_redis_shard_runs_out_first() -> None:
    as_built = run(Scenario(fans=1_000_000, places=80_000, arrival_minutes=2), sections=1)
    assert as_built.first_bottleneck == "redis"
    planned = run(Scenario(fans=1_000_000, places=80_000, arrival_minutes=2))
    assert planned.pools["redis"].first_exhausted is None


# ---- where keys land ----------------------------------------------------------------------


def test_redis_slots_are_redis_clusters() -> None:
    assert crc16_xmodem(b"123456789") == 0x31C3  # the CRC16 the Redis Cluster spec names
    assert [redis_slot(key) for key in ("foo", "bar", "hello")] == [12182, 5061, 866]
    assert redis_slot("{evt:42}:seats") == redis_slot("{evt:42}:hold:h1") == redis_slot("evt:42")
    assert redis_slot("foo{}{bar}") == crc16_xmodem(b"foo{}{bar}") % 16384  # empty tag


def test_kafka_partitions_are_kafkas() -> None:
    """Kafka's own test vectors for Utils.murmur2 (as signed Java ints)."""
    vectors = {
        "21": -973932308,
        "foobar": -790332482,
        "a-little-bit-long-string": -985981536,
        "a-little-bit-longer-string": -1486304829,
        "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
        "abc": 479470107,
    }
    for key, signed in vectors.items():
        assert kafka_murmur2(key.encode()) == signed % (1 << 32), key
    assert 0 <= kafka_partition("6c1f0b8e", 48) < 48


def test_one_event_is_one_shard_and_one_consumer_until_it_is_split() -> None:
    assert hottest_shard_share(1, 8) == 1.0
    assert busiest_consumer_share(1, 48, 16) == 1.0
    assert hottest_shard_share(40, 8) < 0.3
    assert busiest_consumer_share(40, 48, 16) < 0.3
    assert busiest_consumer_share(40, 6, 16) >= 1 / 6  # replicas beyond partitions idle


# ---- the command --------------------------------------------------------------------------

RESULT = re.compile(r"^RESULT sold_out_s=(\d+|never) first_bottleneck=([a-z-]+) peak_queue=(\d+)$")


def test_the_command_prints_the_curve_and_a_result_line_and_draws_the_chart(
    tmp_path: Path,
) -> None:
    chart = tmp_path / "img" / "sellout.svg"
    result = CliRunner().invoke(
        marquee,
        ["simulate", "onsale", "--fans", "200000", "--places", "10000", "--svg", str(chart)],
    )
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert RESULT.match(lines[-1]), lines[-1]
    assert "Sell-out curve:" in result.output
    assert "First bottleneck:" in result.output
    root = ElementTree.fromstring(chart.read_text(encoding="utf-8"))  # noqa: S314 - ours
    assert root.tag.endswith("svg")
    assert len(root.findall("{http://www.w3.org/2000/svg}polyline")) == 2


def test_the_default_on_sale_runs_end_to_end() -> None:
    result = CliRunner().invoke(marquee, ["simulate", "onsale"])
    assert result.exit_code == 0, result.output
    match = RESULT.match(result.output.strip().splitlines()[-1])
    assert match is not None
    assert match.group(2) == "admission"  # the plan: the waiting room paces the sale
    assert int(match.group(3)) > 5_000_000


def test_replica_options_and_a_costs_file_change_the_run(tmp_path: Path) -> None:
    costs = tmp_path / "costs.json"
    costs.write_text(json.dumps({"payments_ms": 330}), encoding="utf-8")
    args = ["simulate", "onsale", "--fans", "100000", "--places", "5000"]
    slow = CliRunner().invoke(marquee, [*args, "--costs", str(costs), "--payments-workers", "2"])
    assert slow.exit_code == 0, slow.output
    assert "first_bottleneck=payments" in slow.output
    moved = CliRunner().invoke(marquee, [*args, "--replicas", "payments=200"])
    assert "first_bottleneck=payments" not in moved.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--replicas", "paymnets=3"], "unknown replica name 'paymnets'"),
        (["--replicas", "payments"], "NAME=N"),
    ],
)
def test_bad_input_is_refused_with_a_reason(extra: list[str], message: str) -> None:
    result = CliRunner().invoke(marquee, ["simulate", "onsale", "--fans", "1000", *extra])
    assert result.exit_code == 2
    assert message in result.output


def test_an_unknown_cost_is_refused(tmp_path: Path) -> None:
    costs = tmp_path / "costs.json"
    costs.write_text(json.dumps({"payment_ms": 1}), encoding="utf-8")
    result = CliRunner().invoke(marquee, ["simulate", "onsale", "--costs", str(costs)])
    assert result.exit_code == 2
    assert "unknown cost payment_ms" in result.output


def test_every_cost_says_where_it_comes_from() -> None:
    kinds = {"measured", "assumed", "setting", "code"}
    for figure in fields(Costs):
        assert figure.metadata["kind"] in kinds, figure.name
        assert len(figure.metadata["source"]) > 20, figure.name
    measured = [f for f in fields(Costs) if f.metadata["kind"] == "measured"]
    assert all(re.search(r"2026-1[12]-\d\d", f.metadata["source"]) for f in measured)


def test_the_chart_is_deterministic() -> None:
    first, second = run(SMALL, Costs()), run(SMALL, Costs())
    assert sellout_svg(first) == sellout_svg(second)
    assert first.result_line == second.result_line
