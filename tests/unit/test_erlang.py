"""Erlang B/C/A: reference values, independent cross-checks (log-space sums, the birth–death chain,
numeric integration of the offered-wait density) and monotonicity properties."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from services.routing.erlang import (
    UnstableQueueError,
    agents_for_service_level,
    arrival_rate,
    erlang_a_figures,
    erlang_b,
    erlang_c,
    erlang_c_figures,
    log_series,
    traffic_erlangs,
)

REF_RATE = 100 / 1800  # 100 calls in 30 minutes


# ---------------------------------------------------------------------------------------------
# Erlang C
# ---------------------------------------------------------------------------------------------


def test_reference_call_centre() -> None:
    f = erlang_c_figures(REF_RATE, 180, 14, 20)
    assert f.traffic_erlangs == pytest.approx(10.0)
    assert f.occupancy == pytest.approx(10 / 14)
    assert f.probability_wait == pytest.approx(0.1741, abs=5e-5)
    assert f.asa_seconds == pytest.approx(7.84, abs=5e-3)
    assert f.service_level == pytest.approx(0.888, abs=5e-4)


def test_traffic_from_calls_over_an_interval() -> None:
    assert traffic_erlangs(arrival_rate(100, 1800), 180) == pytest.approx(10.0)


def _erlang_b_logspace(n: int, a: float) -> float:
    """Independent: B = (a^n/n!) / Σ_k a^k/k!, summed in log space with lgamma."""
    logs = [k * math.log(a) - math.lgamma(k + 1) for k in range(n + 1)]
    top = max(logs)
    return math.exp(logs[-1] - top) / sum(math.exp(v - top) for v in logs)


@pytest.mark.parametrize(("n", "a"), [(1, 0.5), (10, 10.0), (14, 10.0), (50, 42.3), (300, 280.0), (2000, 1950.0)])
def test_erlang_b_matches_the_defining_sum(n: int, a: float) -> None:
    assert erlang_b(n, a) == pytest.approx(_erlang_b_logspace(n, a), rel=1e-9)


def test_erlang_b_known_values() -> None:
    assert erlang_b(1, 1.0) == pytest.approx(0.5)
    assert erlang_b(10, 10.0) == pytest.approx(0.2145823, abs=1e-7)


def test_large_centres_stay_finite_and_sensible() -> None:
    # 10,000 agents at 99 % occupancy: factorials or powers would overflow here.
    pw = erlang_c(10_000, 9_900.0)
    assert 0.0 < pw < 1.0
    f = erlang_c_figures(9_900 / 180, 180, 10_000, 20)
    assert 0.0 < f.service_level < 1.0
    assert f.asa_seconds == pytest.approx(pw * 180 / 100)
    # Economies of scale: same occupancy, much less waiting with more agents.
    assert erlang_c(10_000, 9_000.0) < erlang_c(100, 90.0)


@pytest.mark.parametrize(("agents", "traffic"), [(10, 10.0), (9, 10.0), (1, 1.5)])
def test_unstable_queue_is_an_error_not_nonsense(agents: int, traffic: float) -> None:
    with pytest.raises(UnstableQueueError, match="unstable"):
        erlang_c(agents, traffic)
    with pytest.raises(UnstableQueueError):
        erlang_c_figures(traffic / 180, 180, agents, 20)


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_agents_must_be_a_positive_integer(bad: object) -> None:
    with pytest.raises(ValueError, match="agents"):
        erlang_b(bad, 1.0)  # type: ignore[arg-type]


@pytest.mark.parametrize(("rate", "aht", "threshold"), [(-1, 180, 20), (0.1, 0, 20), (0.1, 180, -1),
                                                       (math.nan, 180, 20), (0.1, math.inf, 20)])
def test_bad_figures_are_rejected(rate: float, aht: float, threshold: float) -> None:
    with pytest.raises(ValueError, match="must be"):
        erlang_c_figures(rate, aht, 20, threshold)


@settings(max_examples=60, deadline=None)
@given(traffic=st.floats(0.05, 400), extra=st.integers(1, 40), threshold=st.floats(0, 120))
def test_more_agents_never_hurt(traffic: float, extra: int, threshold: float) -> None:
    n = math.floor(traffic) + extra
    rate = traffic / 180
    f, g = erlang_c_figures(rate, 180, n, threshold), erlang_c_figures(rate, 180, n + 1, threshold)
    assert 0 <= g.probability_wait <= f.probability_wait <= 1
    assert g.asa_seconds <= f.asa_seconds
    assert f.service_level <= g.service_level <= 1
    assert g.occupancy < f.occupancy < 1


@settings(max_examples=60, deadline=None)
@given(traffic=st.floats(0.05, 400), extra=st.integers(1, 40), t=st.floats(0, 120), dt=st.floats(0.1, 60))
def test_service_level_grows_with_the_threshold(traffic: float, extra: int, t: float, dt: float) -> None:
    n, rate = math.floor(traffic) + extra, traffic / 180
    low, high = erlang_c_figures(rate, 180, n, t), erlang_c_figures(rate, 180, n, t + dt)
    assert low.service_level <= high.service_level
    # At threshold 0 the service level is the share that does not wait at all.
    assert erlang_c_figures(rate, 180, n, 0).service_level == pytest.approx(1 - low.probability_wait)


# ---------------------------------------------------------------------------------------------
# Erlang A: independent checks
# ---------------------------------------------------------------------------------------------


def _birth_death(rate: float, aht: float, n: int, patience: float) -> list[float]:
    """Stationary distribution of M/M/n+M by the balance equations, truncated far in the tail."""
    mu, theta = 1 / aht, 1 / patience
    weights = [1.0]
    k = 0
    while True:
        k += 1
        death = min(k, n) * mu + max(0, k - n) * theta
        weights.append(weights[-1] * rate / death)
        if death > 2 * rate and weights[-1] < 1e-18 * sum(weights):
            break
    total = sum(weights)
    return [w / total for w in weights]


def _simpson(f, a: float, b: float, steps: int = 20_000) -> float:  # type: ignore[no-untyped-def]
    h = (b - a) / steps
    total = f(a) + f(b)
    for i in range(1, steps):
        total += (4 if i % 2 else 2) * f(a + i * h)
    return total * h / 3


CASES = [  # (rate, aht, agents, threshold, patience)
    (REF_RATE, 180, 14, 20, 120),
    (REF_RATE, 180, 8, 20, 120),  # overloaded: N < A is fine with impatient customers
    (REF_RATE, 180, 11, 30, 600),
    (1.0, 240, 230, 15, 90),
    (0.2, 300, 50, 60, 30),
]


@pytest.mark.parametrize(("rate", "aht", "n", "threshold", "patience"), CASES)
def test_erlang_a_matches_the_birth_death_chain(rate: float, aht: float, n: int, threshold: float,
                                                patience: float) -> None:
    pi = _birth_death(rate, aht, n, patience)
    f = erlang_a_figures(rate, aht, n, threshold, patience)
    assert f.probability_wait == pytest.approx(sum(pi[n:]), rel=1e-9)
    queue_length = sum((k - n) * p for k, p in enumerate(pi) if k > n)
    assert f.probability_abandon == pytest.approx(queue_length / patience / rate, rel=1e-9)
    assert f.mean_wait_seconds == pytest.approx(queue_length / rate, rel=1e-9)  # Little's law
    busy = sum(min(k, n) * p for k, p in enumerate(pi))
    assert f.occupancy == pytest.approx(busy / n, rel=1e-9)


@pytest.mark.parametrize(("rate", "aht", "n", "threshold", "patience"), CASES)
def test_erlang_a_matches_numeric_integration_of_the_wait(rate: float, aht: float, n: int, threshold: float,
                                                          patience: float) -> None:
    """Integrates the offered-wait density f_V(x) = Nμ·π_N·exp(λ(1 − e^(−θx))/θ − Nμx) (π_N from the
    chain) against the patience, on a grid, for every figure that depends on the wait."""
    pi = _birth_death(rate, aht, n, patience)
    mu, theta = 1 / aht, 1 / patience
    c = n * mu * pi[n]

    def density(x: float) -> float:
        return c * math.exp(rate * (1 - math.exp(-theta * x)) / theta - n * mu * x)

    end = (rate / theta + 60) / (n * mu)  # the density is below e^-60 of its peak beyond this
    p_served_waited = _simpson(lambda x: density(x) * math.exp(-theta * x), 0, end)
    p_served_within = sum(pi[:n]) + _simpson(lambda x: density(x) * math.exp(-theta * x), 0, threshold)
    p_ab_after = _simpson(lambda x: density(x) * (math.exp(-theta * threshold) - math.exp(-theta * x)),
                          threshold, threshold + end)
    served_wait = _simpson(lambda x: x * density(x) * math.exp(-theta * x), 0, end)

    f = erlang_a_figures(rate, aht, n, threshold, patience)
    assert _simpson(density, 0, end) == pytest.approx(f.probability_wait, rel=1e-6)
    assert 1 - sum(pi[:n]) - p_served_waited == pytest.approx(f.probability_abandon, rel=1e-6)
    assert f.answered_within_threshold == pytest.approx(p_served_within, rel=1e-6)
    assert f.abandoned_after_threshold == pytest.approx(p_ab_after, rel=1e-6, abs=1e-12)
    assert f.asa_seconds == pytest.approx(served_wait / (1 - f.probability_abandon), rel=1e-6)
    assert f.service_level == pytest.approx(p_served_within / (1 - f.probability_abandon + p_ab_after), rel=1e-6)


def test_erlang_a_tends_to_erlang_c_with_endless_patience() -> None:
    c = erlang_c_figures(REF_RATE, 180, 14, 20)
    a = erlang_a_figures(REF_RATE, 180, 14, 20, patience_seconds=1e9)
    assert a.probability_wait == pytest.approx(c.probability_wait, rel=1e-6)
    assert a.asa_seconds == pytest.approx(c.asa_seconds, rel=1e-6)
    assert a.service_level == pytest.approx(c.service_level, rel=1e-6)
    assert a.probability_abandon < 1e-7


def test_erlang_a_overloaded_abandonment_approaches_the_excess() -> None:
    # N ≪ A with short patience: whatever the agents cannot serve leaves, P_ab → 1 − N/A.
    f = erlang_a_figures(55.5, 180, 9000, 20, 600)
    assert f.probability_abandon == pytest.approx(1 - 9000 / 9990, rel=1e-3)
    assert f.occupancy == pytest.approx(1.0, abs=1e-3)


def test_log_series_known_points() -> None:
    assert log_series(3.0, 0.0) == 0.0
    # y = 1, x = 0: Σ 1/j! = e.
    assert log_series(0.0, 1.0) == pytest.approx(1.0)
    # Huge y does not overflow: 𝒜(0, y) = e^y.
    assert log_series(0.0, 5000.0) == pytest.approx(5000.0, rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(traffic=st.floats(0.5, 150), n=st.integers(1, 200), patience=st.floats(5, 1200), threshold=st.floats(0, 90))
def test_erlang_a_properties(traffic: float, n: int, patience: float, threshold: float) -> None:
    rate = traffic / 180
    f = erlang_a_figures(rate, 180, n, threshold, patience)
    more_agents = erlang_a_figures(rate, 180, n + 1, threshold, patience)
    more_patient = erlang_a_figures(rate, 180, n, threshold, patience * 1.5)
    for fig in (f, more_agents, more_patient):
        assert 0 <= fig.probability_abandon <= fig.probability_wait <= 1
        assert 0 <= fig.service_level <= 1
        assert 0 <= fig.occupancy <= 1
    tol = 1e-12
    assert more_agents.probability_wait <= f.probability_wait + tol
    assert more_agents.probability_abandon <= f.probability_abandon + tol
    assert more_agents.service_level >= f.service_level - tol
    assert more_patient.probability_abandon <= f.probability_abandon + tol
    assert more_patient.probability_wait >= f.probability_wait - tol


# ---------------------------------------------------------------------------------------------
# Staffing
# ---------------------------------------------------------------------------------------------


def test_agents_for_the_reference_target() -> None:
    # 13 agents give 0.78 (below 80 %), 14 give 0.888.
    assert erlang_c_figures(REF_RATE, 180, 13, 20).service_level < 0.8
    assert agents_for_service_level(REF_RATE, 180, 20, 0.8) == 14


@settings(max_examples=40, deadline=None)
@given(traffic=st.floats(0.1, 2000), target=st.floats(0.05, 0.99), threshold=st.floats(1, 60),
       patience=st.none() | st.floats(10, 900))
@example(traffic=1999.9999999999998, target=0.05078125, threshold=5.0, patience=None)  # CI, stop 9
def test_agents_needed_is_the_fewest_that_reach_the_target(traffic: float, target: float, threshold: float,
                                                           patience: float | None) -> None:
    rate = traffic / 180
    n = agents_for_service_level(rate, 180, threshold, target, patience)

    def sl(k: int) -> float:
        if patience is None:
            return erlang_c_figures(rate, 180, k, threshold).service_level
        return erlang_a_figures(rate, 180, k, threshold, patience).service_level

    assert sl(n) >= target
    offered = traffic_erlangs(rate, 180)  # rate·180 may round past `traffic` (1999.99… → 2000.0)
    if n > 1 and (patience is not None or n - 1 > offered):
        assert sl(n - 1) < target


@pytest.mark.parametrize("target", [0, 1, 1.5, -0.2])
def test_target_must_be_a_share(target: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        agents_for_service_level(REF_RATE, 180, 20, target)


# ---------------------------------------------------------------------------------------------
# switchboard erlang
# ---------------------------------------------------------------------------------------------

REF_ARGS = ["erlang", "--calls", "100", "--interval", "1800", "--aht", "180", "--threshold", "20"]


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from services import cli

    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def test_cli_reference_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli([*REF_ARGS, "--agents", "14", "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["model"] == "erlang_c"
    assert data["traffic_erlangs"] == pytest.approx(10.0)
    assert data["occupancy"] == pytest.approx(10 / 14)
    assert data["probability_wait"] == pytest.approx(0.1741, abs=5e-5)
    assert data["asa_seconds"] == pytest.approx(7.84, abs=5e-3)
    assert data["service_level"] == pytest.approx(0.888, abs=5e-4)
    assert "probability_abandon" not in data


def test_cli_reference_table(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli([*REF_ARGS, "--agents", "14"], capsys)
    assert code == 0
    lines = {line.split("  ")[0]: line for line in out.splitlines()}
    assert "17.41%" in lines["probability of waiting"]
    assert "7.84 s" in lines["ASA"]
    assert "88.84%" in lines["service level (20 s)"]


def test_cli_erlang_a_figures(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli([*REF_ARGS, "--agents", "14", "--patience", "120", "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    expected = erlang_a_figures(REF_RATE, 180, 14, 20, 120)
    assert data["model"] == "erlang_a"
    assert data["probability_abandon"] == pytest.approx(expected.probability_abandon)
    assert data["probability_wait"] == pytest.approx(expected.probability_wait)
    assert data["service_level"] == pytest.approx(expected.service_level)
    assert data["erlang_c"]["probability_wait"] == pytest.approx(0.1741, abs=5e-5)
    # Impatient callers: fewer wait, some leave.
    assert 0 < data["probability_abandon"] < data["probability_wait"] < data["erlang_c"]["probability_wait"]


def test_cli_erlang_a_works_where_erlang_c_is_unstable(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli([*REF_ARGS, "--agents", "8", "--patience", "120"], capsys)
    assert code == 0
    assert "unstable (N <= A)" in out
    assert "probability of abandoning" in out


def test_cli_target_service_level(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli([*REF_ARGS, "--target-sl", "0.8", "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["agents_needed"] == data["agents"] == 14
    assert data["service_level"] >= 0.8
    code, out, _ = run_cli([*REF_ARGS, "--target-sl", "0.8", "--patience", "120", "--json"], capsys)
    assert code == 0
    data = json.loads(out)
    assert data["agents_needed"] == agents_for_service_level(REF_RATE, 180, 20, 0.8, 120) < 14
    code, out, _ = run_cli([*REF_ARGS, "--target-sl", "0.8"], capsys)
    assert code == 0 and "14 agent(s) needed" in out


@pytest.mark.parametrize(("extra", "message"), [
    (["--agents", "10"], "unstable: 10 agent(s) for 10 erlangs"),
    (["--agents", "0"], "--agents: '0' must be >= 1"),
    (["--agents", "14", "--target-sl", "0.8"], "not allowed with argument"),
    ([], "one of the arguments --agents --target-sl is required"),
    (["--target-sl", "80"], "must be a share between 0 and 1"),
    (["--agents", "14", "--patience", "0"], "--patience: '0' must be > 0"),
    (["--agents", "14", "--aht", "abc"], "'abc' is not a number"),
    (["--agents", "14", "--interval", "-5"], "--interval: '-5' must be > 0"),
    (["--agents", "14", "--calls", "0"], "--calls must be > 0"),
])
def test_cli_bad_arguments_exit_2(extra: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli([*REF_ARGS, *extra], capsys)
    assert code == 2
    assert message in err
    assert out == ""
