"""Queueing formulas for staffing and estimated wait: Erlang B, Erlang C (M/M/N) and Erlang A
(M/M/N+M, customers with exponential patience).

Pure functions of rates and times (seconds), no I/O. Numerically stable for large N: Erlang B by
its recursion ``B(k) = A·B(k-1) / (k + A·B(k-1))`` (no factorials, no powers), and the Erlang A
series summed with a running rescale so they neither overflow nor lose the small terms.

Notation: λ arrivals per second, h the mean handle time (μ = 1/h), N agents, A = λ·h the offered
traffic in erlangs, θ = 1/patience the abandonment rate, T the service-level threshold.

Erlang C (infinitely patient customers, stable only for N > A):

    P_w = N·B / (N − A·(1 − B))      with B = Erlang B(N, A)
    ASA = P_w · h / (N − A)          mean wait of all (answered) contacts
    SL(T) = 1 − P_w · e^(−(N−A)·T/h)
    occupancy = A / N

Erlang A (Palm; Mandelbaum & Zeltyn): the birth–death chain with death rate kμ for k ≤ N and
Nμ + (k−N)θ above. With r_j = Π_{i=1..j} λ / (Nμ + iθ), S = Σ_{j≥0} r_j (= A(Nμ/θ, λ/θ) in their
notation) and B = Erlang B(N, A):

    P_w = S·B / (1 − B + S·B)                      an arrival finds all agents busy (PASTA)
    π_N = P_w / S                                  exactly N in the system
    P_ab = π_N · θ · Σ_j j·r_j / λ                 abandonment rate θ·E[queue] over λ

A contact that arrives with j−1 others waiting is served (reaches an agent before its patience runs
out) with probability Nμ/(Nμ+jθ), and its expected wait on that event is that times
Σ_{i=1..j} 1/(Nμ+iθ) (the customers ahead leave at rate Nμ + iθ), so

    ASA = E[W | served] = π_N · Σ_{j≥1} r_{j−1}·Nμ/(Nμ+jθ)·Σ_{i=1..j} 1/(Nμ+iθ) / (1 − P_ab)

The offered wait V (time to reach an agent if infinitely patient) has the density
f_V(x) = Nμ·π_N·exp(λ(1 − e^(−θx))/θ − Nμx) for x > 0. Integrating it with the patience gives, with
x = Nμ/θ, y = λ/θ, y_T = y·e^(−θT) and 𝒜(x, y) = Σ_{j≥0} y^j / Π_{k=1..j} (x+k):

    P(V > T) = π_N · e^(y − y_T − NμT) · 𝒜(x, y_T)
    P(served, W > T) = π_N · x/(x+1) · e^(y − y_T − (Nμ+θ)T) · 𝒜(x+1, y_T)
    P(W > T) = e^(−θT) · P(V > T)

and from them the service level, by default the KPI the engine reports: answered within T ÷
(answered + abandoned after T).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Series are rescaled past this size (keeps every partial sum finite).
_RESCALE_AT = 1e250
_RESCALE_LOG = math.log(_RESCALE_AT)
_MAX_TERMS = 50_000_000
MAX_AGENTS = 10_000_000  # upper end of the staffing search


class UnstableQueueError(ValueError):
    """Erlang C with N ≤ A: the queue grows without bound, no steady state exists."""


@dataclass(frozen=True, slots=True)
class ErlangCFigures:
    arrival_rate: float  # contacts per second
    aht_seconds: float
    agents: int
    threshold_seconds: float
    traffic_erlangs: float
    occupancy: float
    probability_wait: float
    asa_seconds: float  # mean wait over all contacts
    service_level: float  # share answered within the threshold


@dataclass(frozen=True, slots=True)
class ErlangAFigures:
    arrival_rate: float
    aht_seconds: float
    agents: int
    threshold_seconds: float
    patience_seconds: float
    traffic_erlangs: float
    occupancy: float  # served load per agent: λ·(1 − P_ab)·h / N
    probability_wait: float  # an arrival finds every agent busy
    probability_abandon: float
    asa_seconds: float  # mean wait of answered contacts
    mean_wait_seconds: float  # mean time in queue of all contacts (answered or abandoned)
    service_level: float  # answered within T ÷ (answered + abandoned after T)
    answered_within_threshold: float  # answered within T ÷ offered
    abandoned_after_threshold: float  # abandoned after waiting more than T ÷ offered


# ---------------------------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------------------------


def _positive(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _non_negative(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return float(value)


def _agents(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"agents must be an integer >= 1, got {value!r}")
    return value


def arrival_rate(calls: float, interval_seconds: float) -> float:
    """Contacts per second from a count over an interval."""
    return _non_negative("calls", calls) / _positive("interval", interval_seconds)


def traffic_erlangs(rate: float, aht_seconds: float) -> float:
    """Offered traffic A = λ·h."""
    return _non_negative("arrival rate", rate) * _positive("aht", aht_seconds)


# ---------------------------------------------------------------------------------------------
# Erlang B and C
# ---------------------------------------------------------------------------------------------


def erlang_b(agents: int, traffic: float) -> float:
    """Blocking probability of M/M/N/N (iterative recursion, stable for any N)."""
    n = _agents(agents)
    a = _non_negative("traffic", traffic)
    b = 1.0
    for k in range(1, n + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(agents: int, traffic: float) -> float:
    """Probability that a contact waits in M/M/N; UnstableQueueError when N ≤ A."""
    n = _agents(agents)
    a = _non_negative("traffic", traffic)
    if n <= a:
        raise UnstableQueueError(
            f"unstable: {n} agent(s) for {a:.4g} erlangs of traffic (need more than {a:.4g}); "
            "the queue grows without bound under Erlang C (give a patience for Erlang A)")
    b = erlang_b(n, a)
    return n * b / (n - a * (1.0 - b))


def erlang_c_figures(rate: float, aht_seconds: float, agents: int, threshold_seconds: float) -> ErlangCFigures:
    h = _positive("aht", aht_seconds)
    t = _non_negative("threshold", threshold_seconds)
    a = traffic_erlangs(rate, h)
    n = _agents(agents)
    pw = erlang_c(n, a)
    return ErlangCFigures(
        arrival_rate=rate, aht_seconds=h, agents=n, threshold_seconds=t, traffic_erlangs=a,
        occupancy=a / n, probability_wait=pw, asa_seconds=pw * h / (n - a),
        service_level=1.0 - pw * math.exp(-(n - a) * t / h),
    )


# ---------------------------------------------------------------------------------------------
# Erlang A
# ---------------------------------------------------------------------------------------------


def log_series(x: float, y: float) -> float:
    """log 𝒜(x, y) = log Σ_{j≥0} y^j / Π_{k=1..j} (x+k), for x ≥ 0, y ≥ 0 (Mandelbaum–Zeltyn's
    A(x, y) = x·e^y·y^(−x)·γ(x, y)). Summed with rescaling: no overflow for large y."""
    total, term, log_scale = 1.0, 1.0, 0.0
    j = 0
    while j < _MAX_TERMS:
        j += 1
        term *= y / (x + j)
        total += term
        if x + j >= y and term <= 1e-17 * total:
            break
        if total > _RESCALE_AT:
            total, term, log_scale = total / _RESCALE_AT, term / _RESCALE_AT, log_scale + _RESCALE_LOG
    return math.log(total) + log_scale


@dataclass(frozen=True, slots=True)
class _QueueSums:
    """Sums over the waiting states of M/M/N+M, all divided by the same (unknown) scale e^log_scale."""

    s: float  # Σ_{j≥0} r_j
    jr: float  # Σ_{j≥1} j·r_j
    served_wait: float  # Σ_{j≥1} r_{j−1}·Nμ/(Nμ+jθ)·Σ_{i=1..j} 1/(Nμ+iθ)
    log_scale: float


def _queue_sums(n: int, mu: float, lam: float, theta: float) -> _QueueSums:
    n_mu = n * mu
    s, jr, served_wait, log_scale = 1.0, 0.0, 0.0, 0.0
    r_prev = 1.0  # r_{j−1}
    harmonic = 0.0
    j = 0
    while j < _MAX_TERMS:
        j += 1
        d = n_mu + j * theta
        harmonic += 1.0 / d
        w = r_prev * (n_mu / d) * harmonic
        served_wait += w
        r = r_prev * lam / d
        s += r
        jr += j * r
        if d >= lam and j * r <= 1e-17 * jr and r <= 1e-17 * s and w <= 1e-17 * served_wait:
            break
        if s > _RESCALE_AT or jr > _RESCALE_AT or served_wait > _RESCALE_AT:
            s, jr, served_wait, r = (v / _RESCALE_AT for v in (s, jr, served_wait, r))
            log_scale += _RESCALE_LOG
        r_prev = r
    return _QueueSums(s, jr, served_wait, log_scale)


def erlang_a_figures(rate: float, aht_seconds: float, agents: int, threshold_seconds: float,
                     patience_seconds: float) -> ErlangAFigures:
    """M/M/N+M figures; stable for any N ≥ 1 (impatient customers bound the queue)."""
    lam = _positive("arrival rate", rate)
    h = _positive("aht", aht_seconds)
    n = _agents(agents)
    t = _non_negative("threshold", threshold_seconds)
    patience = _positive("patience", patience_seconds)
    mu, theta = 1.0 / h, 1.0 / patience
    a = lam * h
    b = erlang_b(n, a)

    sums = _queue_sums(n, mu, lam, theta)
    log_s = math.log(sums.s) + sums.log_scale
    # P_w = S·B / (1 − B + S·B) = B / (B + (1 − B)/S)
    pw = b / (b + (1.0 - b) * math.exp(-log_s)) if b > 0 else 0.0
    p_ab = pw * theta * sums.jr / (lam * sums.s)
    served_wait = pw * sums.served_wait / sums.s  # E[W; served]
    log_pi_n = math.log(pw) - log_s if pw > 0 else -math.inf

    x, y = n * mu / theta, lam / theta
    y_t = y * math.exp(-theta * t)
    if pw > 0:
        p_v_gt_t = math.exp(log_pi_n + y - y_t - n * mu * t + log_series(x, y_t))
        p_served_gt_t = math.exp(log_pi_n + math.log(x / (x + 1)) + y - y_t - (n * mu + theta) * t
                                 + log_series(x + 1, y_t))
    else:
        p_v_gt_t = p_served_gt_t = 0.0
    p_w_gt_t = math.exp(-theta * t) * p_v_gt_t
    p_served = 1.0 - p_ab
    p_served_within = min(p_served, max(0.0, p_served - p_served_gt_t))
    p_ab_after = min(p_ab, max(0.0, p_w_gt_t - p_served_gt_t))
    return ErlangAFigures(
        arrival_rate=lam, aht_seconds=h, agents=n, threshold_seconds=t, patience_seconds=patience,
        traffic_erlangs=a, occupancy=min(1.0, a * p_served / n), probability_wait=pw, probability_abandon=p_ab,
        asa_seconds=served_wait / p_served if p_served > 0 else 0.0,
        mean_wait_seconds=p_ab / theta,
        service_level=p_served_within / (p_served + p_ab_after),
        answered_within_threshold=p_served_within,
        abandoned_after_threshold=p_ab_after,
    )


# ---------------------------------------------------------------------------------------------
# Staffing
# ---------------------------------------------------------------------------------------------


def agents_for_service_level(rate: float, aht_seconds: float, threshold_seconds: float, target: float,
                             patience_seconds: float | None = None) -> int:
    """The fewest agents whose service level reaches `target` (0 < target < 1), by Erlang C, or by
    Erlang A when a patience is given. The service level grows with N, so a bisection finds it."""
    if isinstance(target, bool) or not isinstance(target, int | float) or not 0 < target < 1:
        raise ValueError(f"target service level must be between 0 and 1 (exclusive), got {target!r}")
    lam = _positive("arrival rate", rate)
    h = _positive("aht", aht_seconds)
    t = _non_negative("threshold", threshold_seconds)

    def service_level(n: int) -> float:
        if patience_seconds is None:
            return erlang_c_figures(lam, h, n, t).service_level
        return erlang_a_figures(lam, h, n, t, patience_seconds).service_level

    low = math.floor(lam * h) if patience_seconds is None else 0  # service level below target at `low`
    high = max(1, low + 1)
    while service_level(high) < target:
        low, high = high, high * 2
        if high > MAX_AGENTS:
            raise ValueError(f"more than {MAX_AGENTS} agents would be needed")
    while high - low > 1:
        mid = (low + high) // 2
        if service_level(mid) >= target:
            high = mid
        else:
            low = mid
    return high
