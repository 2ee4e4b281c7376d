"""Pipedrive's two rate limits: a per-token burst on a rolling window and a per-company daily
token budget, with the ``x-ratelimit-*`` headers and the HTML 403 block after ignored 429s.

Both run on a monotonic clock (``time.monotonic`` unless the emulator is given another), with
window lengths from :class:`EmulatorLimits` so tests can compress them:

- Burst: per token, a rolling ``burst_window_seconds`` window (2 s) holding at most the
  plan's limit (Lite 20 for API tokens, 80 for OAuth ...). Every request let through the
  burst check takes a slot, whatever its answer. Headers on every authenticated answer:
  ``x-ratelimit-limit``, ``x-ratelimit-remaining`` and ``x-ratelimit-reset``, the seconds
  (relative) until the oldest slot frees: whole seconds rounded up for windows of 1 s or
  more, else 3 decimals.
- Daily budget: 30,000 tokens x plan multiplier x seats, shared by every token. A request
  costs its route's tokens (:data:`DEFAULT_COSTS`) when it passes the burst check, whatever
  its answer; it is refused with 429 while the rest is smaller than its cost. The budget
  refills every ``daily_window_seconds`` counted from the emulator's start (the stand-in for
  "server midnight"). ``x-daily-ratelimit-token-limit``/``-remaining`` are sent unless
  switched off, and dropped from a share of answers with ``daily_headers_drop_rate``.
- 429 bodies use the envelope with ``"error": "request over limit"`` (the real body is not
  documented); ``Retry-After`` is sent only with ``retry_after=True``.
- Block: an API token (the docs name only API-token integrations) that receives
  ``block_after_429s`` 429s in a row gets a Cloudflare-style HTML 403 on every request for
  ``block_seconds``; a request let through resets the count.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from .auth import AuthKind

__all__ = [
    "BLOCK_PAGE",
    "DEFAULT_COSTS",
    "PLANS",
    "EmulatorLimits",
    "Outcome",
    "RateLimiter",
    "Verdict",
]

Plan = Literal["lite", "growth", "premium", "ultimate"]
#: Burst limit per 2 s (API token, OAuth) and daily budget multiplier of each plan.
PLANS: Mapping[str, tuple[int, int, int]] = {
    "lite": (20, 80, 1),
    "growth": (40, 160, 2),
    "premium": (100, 400, 5),
    "ultimate": (120, 480, 7),
}
#: Token cost of each route (``x-token-cost`` in the OpenAPI files, or the generic costs:
#: ``organizations.list`` is taken as the v2 list cost of persons and ``users.list`` as the
#: generic v1 list cost, since the reference names neither).
DEFAULT_COSTS: Mapping[str, int] = {
    "persons.list": 10,
    "persons.get": 1,
    "personFields.v2": 10,
    "organizations.list": 10,
    "persons.v1.list": 20,
    "recents": 20,
    "leads.list": 20,
    "leads.archived": 40,
    "leads.get": 2,
    "leadLabels": 10,
    "personFields": 20,
    "dealFields": 20,
    "leadFields": 20,
    "users.me": 2,
    "users.list": 20,
}
BLOCK_PAGE = """<!DOCTYPE html>
<html lang="en-US"><head><title>Attention Required! | Cloudflare</title></head>
<body><div id="cf-wrapper"><h1>Sorry, you have been blocked</h1>
<h2>You are unable to access pipedrive.com</h2>
<p>This website is using a security service to protect itself from online attacks.</p>
<p>Cloudflare Ray ID: <strong>emulated</strong></p></div></body></html>
"""
Outcome = Literal["ok", "burst", "daily", "blocked"]


@dataclass(frozen=True)
class EmulatorLimits:
    """Rate-limit settings. ``burst_limit`` and ``daily_budget`` override the plan's values;
    ``enabled=False`` turns both limits (and their headers) off."""

    plan: Plan = "lite"
    seats: int = 1
    burst_limit: int | None = None
    burst_window_seconds: float = 2.0
    daily_budget: int | None = None
    daily_window_seconds: float = 86_400.0
    costs: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_COSTS))
    retry_after: bool = False
    block_after_429s: int | None = 10
    block_seconds: float = 60.0
    daily_headers: bool = True
    daily_headers_drop_rate: float = 0.0
    enabled: bool = True

    def burst_for(self, kind: AuthKind) -> int:
        """The burst limit of one token of ``kind``."""
        if self.burst_limit is not None:
            return self.burst_limit
        api, oauth, _ = PLANS[self.plan]
        return api if kind == "api_token" else oauth

    def budget(self) -> int:
        """The company's daily token budget."""
        if self.daily_budget is not None:
            return self.daily_budget
        return 30_000 * PLANS[self.plan][2] * self.seats


class Verdict(NamedTuple):
    """What the limiter decided for one request, and the headers to send."""

    outcome: Outcome
    headers: dict[str, str]


class RateLimiter:
    """The burst windows, strikes and blocks per token and the company's daily spend."""

    def __init__(
        self, limits: EmulatorLimits, monotonic: Callable[[], float], rng: random.Random
    ) -> None:
        self.limits = limits
        self._monotonic = monotonic
        self._rng = rng
        self._started = monotonic()
        self._windows: dict[str, deque[float]] = {}
        self._strikes: dict[str, int] = {}
        self._blocked_until: dict[str, float] = {}
        self._period = 0
        self.spent = 0

    def reset(self) -> None:
        """Forget every window, strike and block, and refill the daily budget."""
        self._windows.clear()
        self._strikes.clear()
        self._blocked_until.clear()
        self.spent = 0

    def remaining(self) -> int:
        """Tokens left in the current daily period."""
        self._roll(self._monotonic())
        return max(0, self.limits.budget() - self.spent)

    def _roll(self, now: float) -> None:
        period = int((now - self._started) // self.limits.daily_window_seconds)
        if period != self._period:
            self._period, self.spent = period, 0

    def _seconds(self, value: float) -> str:
        value = max(0.0, value)
        if self.limits.burst_window_seconds >= 1:
            return str(math.ceil(round(value, 6)))
        return f"{math.ceil(round(value * 1000, 6)) / 1000:.3f}"

    def admit(self, token: str, kind: AuthKind, cost: int) -> Verdict:
        """Decide on one authenticated request by ``token`` costing ``cost`` tokens."""
        limits = self.limits
        if not limits.enabled:
            return Verdict("ok", {})
        now = self._monotonic()
        self._roll(now)
        if self._blocked_until.get(token, -math.inf) > now:
            return Verdict("blocked", {})
        window = self._windows.setdefault(token, deque())
        while window and window[0] <= now - limits.burst_window_seconds:
            window.popleft()
        limit = limits.burst_for(kind)
        outcome: Outcome = "ok"
        if len(window) >= limit:
            outcome = "burst"
        else:
            window.append(now)
            if self.spent + cost > limits.budget():
                outcome = "daily"
            else:
                self.spent += cost
        headers = self._headers(window, limit, now)
        if outcome == "ok":
            self._strikes.pop(token, None)
            return Verdict(outcome, headers)
        strikes = self._strikes.get(token, 0) + 1
        self._strikes[token] = strikes
        if kind == "api_token" and limits.block_after_429s and strikes >= limits.block_after_429s:
            self._blocked_until[token] = now + limits.block_seconds
            self._strikes.pop(token)
        if limits.retry_after:
            wait = (
                window[0] + limits.burst_window_seconds - now
                if outcome == "burst"
                else self._started + (self._period + 1) * limits.daily_window_seconds - now
            )
            headers["Retry-After"] = str(max(1, math.ceil(wait)))
        return Verdict(outcome, headers)

    def _headers(self, window: deque[float], limit: int, now: float) -> dict[str, str]:
        reset = window[0] + self.limits.burst_window_seconds - now if window else 0.0
        headers = {
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-remaining": str(max(0, limit - len(window))),
            "x-ratelimit-reset": self._seconds(reset),
        }
        drop = self.limits.daily_headers_drop_rate
        if self.limits.daily_headers and not (drop > 0 and self._rng.random() < drop):
            budget = self.limits.budget()
            headers["x-daily-ratelimit-token-limit"] = str(budget)
            headers["x-daily-ratelimit-token-remaining"] = str(max(0, budget - self.spent))
        return headers

    def state(self) -> dict[str, Any]:
        """Counters for :meth:`PipedriveEmulator.stats`."""
        now = self._monotonic()
        return {
            "daily_budget": self.limits.budget(),
            "daily_spent": self.spent,
            "daily_remaining": self.remaining(),
            "blocked_tokens": sum(until > now for until in self._blocked_until.values()),
        }
