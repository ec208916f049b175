"""The real routing engine, driven on a virtual clock by Poisson arrivals and exponential handle
times (services/routing/virtual_sim.py), reproduces Erlang C and, with exponential patience,
Erlang A.

Tolerances: 5 % relative, chosen from the spread of the estimates over seeds 0–7 (relative
standard deviation). Erlang C, N=2, A=1.2 erlangs (P_w 0.45): at 200,000 contacts ASA 1.5 %, P_w
0.7 %, SL 0.5 %; these tests run 150,000 (ASA ≈ 1.7 %: 5 % is about three standard deviations; ASA
is the noisiest figure, waits come in long correlated busy periods). Erlang A, N=2, A=2, patience =
AHT (P_ab 0.27) at 80,000 contacts: ASA 1.2 %, abandonment 0.9 %, P_w 0.4 %, SL 0.6 % (four to
twelve standard deviations). Seed 0 lands within 0.4 % of every figure. Runs are deterministic for a
seed, so a failure means the engine's decisions changed, not bad luck of the draw.
"""

from __future__ import annotations

import pytest

from services.routing.erlang import erlang_a_figures, erlang_c_figures
from services.routing.virtual_sim import SimConfig, SimResult, run

AHT = 180.0
THRESHOLD = 20.0


def assert_close(measured: float, expected: float, name: str, rel: float = 0.05) -> None:
    assert measured == pytest.approx(expected, rel=rel), (
        f"{name}: simulated {measured:.5g}, formula {expected:.5g} ({(measured / expected - 1) * 100:+.2f}%)")


def check_engine_counters(result: SimResult, config: SimConfig) -> None:
    """The engine's own queue statistics count the same contacts (warm-up included)."""
    stats = result.engine_stats
    total = config.contacts + config.warmup_contacts
    assert stats.offered == total
    assert stats.answered + stats.abandoned == total  # nobody lost, everyone ended one way
    assert stats.waiting == 0
    assert stats.answered >= result.answered and stats.abandoned >= result.abandoned
    assert stats.answered_within_sl >= result.answered_within_threshold


def test_engine_reproduces_erlang_c() -> None:
    config = SimConfig(arrival_rate=1.2 / AHT, aht_seconds=AHT, agents=2, threshold_seconds=THRESHOLD,
                       contacts=150_000, warmup_contacts=1_000, seed=0)
    result = run(config)
    expected = erlang_c_figures(config.arrival_rate, AHT, config.agents, THRESHOLD)
    assert_close(result.probability_wait, expected.probability_wait, "P(wait)")
    assert_close(result.asa_seconds, expected.asa_seconds, "ASA")
    assert_close(result.service_level, expected.service_level, "service level")
    assert result.abandoned == 0
    check_engine_counters(result, config)


def test_engine_reproduces_erlang_a_abandonment() -> None:
    config = SimConfig(arrival_rate=2.0 / AHT, aht_seconds=AHT, agents=2, threshold_seconds=THRESHOLD,
                       patience_seconds=AHT, contacts=80_000, warmup_contacts=1_000, seed=0)
    result = run(config)
    expected = erlang_a_figures(config.arrival_rate, AHT, config.agents, THRESHOLD, AHT)
    assert_close(result.probability_abandon, expected.probability_abandon, "P(abandon)")
    assert_close(result.probability_wait, expected.probability_wait, "P(wait)")
    assert_close(result.asa_seconds, expected.asa_seconds, "ASA")
    assert_close(result.service_level, expected.service_level, "service level")
    assert_close(result.mean_wait_seconds, expected.mean_wait_seconds, "mean wait")
    check_engine_counters(result, config)


def test_a_lazy_engine_would_be_caught() -> None:
    """The comparison has teeth: one agent fewer than the formula assumes is far outside 5 %."""
    config = SimConfig(arrival_rate=1.2 / AHT, aht_seconds=AHT, agents=2, threshold_seconds=THRESHOLD,
                       contacts=20_000, warmup_contacts=1_000, seed=1)
    result = run(config)
    wrong = erlang_c_figures(config.arrival_rate, AHT, 3, THRESHOLD)
    assert result.probability_wait > 2 * wrong.probability_wait


def test_same_seed_same_run() -> None:
    config = SimConfig(arrival_rate=1.0 / AHT, aht_seconds=AHT, agents=2, patience_seconds=60.0, contacts=2_000,
                       warmup_contacts=100, seed=11)
    first, second = run(config), run(config)
    assert first == second
    assert first.offered == 2_000


@pytest.mark.parametrize("bad", [
    {"arrival_rate": 0.0}, {"aht_seconds": -1.0}, {"agents": 0}, {"patience_seconds": 0.0}, {"contacts": 0},
])
def test_bad_configuration_is_refused(bad: dict[str, float]) -> None:
    args: dict[str, float] = {"arrival_rate": 0.01, "aht_seconds": AHT, "agents": 2, **bad}
    with pytest.raises(ValueError, match="must be"):
        SimConfig(**args)  # type: ignore[arg-type]
