"""Outlier ejection and cooldowns, as a state machine per endpoint (Envoy's outlier detection).

::

    admitted --(N consecutive failures, and the cluster may eject one more)--> ejected
    ejected  --(ejection time over: base × ejection count, capped)-----------> probation
    ejected  --(an active health check passes; Envoy's default)----------------> probation
    probation --(one failure)--> ejected again, for longer
    probation --(M successes)--> admitted; each later ``base`` seconds without failure takes one off the
                                 ejection count, so an endpoint that recovered for good is forgiven

A hold (``Retry-After`` from the upstream) ejects for the time it names, whatever the count says, and a
passing health check does not lift it: the upstream said when to come back.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EjectionRule:
    """The parameters, from a cluster's ``outlier_detection`` or a frontier cluster's ``cooldown``."""

    consecutive_failures: int
    base_s: float
    max_s: float
    probation_successes: int = 1


@dataclass(frozen=True, slots=True)
class Ejection:
    """What an ejection did: for logs, metrics and the admin view."""

    seconds: float
    count: int
    reason: str


@dataclass(slots=True)
class OutlierState:
    consecutive: int = 0
    ejections: int = 0  # the multiplier of the next ejection's duration
    ejected_until: float = 0.0
    probation: int = 0  # successes still needed to leave probation
    forgive_at: float = 0.0  # when the next step comes off the multiplier
    total_ejections: int = 0
    last_reason: str = ""
    held: bool = False  # the current ejection is the upstream's own Retry-After

    def ejected(self, now: float) -> bool:
        return now < self.ejected_until

    def remaining(self, now: float) -> float:
        return max(0.0, self.ejected_until - now)

    def readmit(self, now: float, rule: EjectionRule) -> bool:
        """Move an endpoint whose ejection time is over onto probation; True if it just happened."""
        if self.ejected_until and now >= self.ejected_until:
            self.ejected_until = 0.0
            self.probation = rule.probation_successes
            self.consecutive = 0
            return True
        return False

    def lift(self, now: float, rule: EjectionRule) -> bool:
        """An active health check passed: end an ejection now (not a hold) and put the endpoint on probation,
        so that a recovered replica takes traffic within a probe interval; its first failure ejects it again,
        for longer. True if an ejection was lifted."""
        if not self.ejected(now) or self.held:
            return False
        self.ejected_until = now
        return self.readmit(now, rule)

    def success(self, now: float, rule: EjectionRule) -> None:
        self.readmit(now, rule)
        self.consecutive = 0
        if self.probation:
            self.probation -= 1
            if not self.probation:
                self.forgive_at = now + rule.base_s
        elif self.ejections and now >= self.forgive_at:
            self.ejections -= 1
            self.forgive_at = now + rule.base_s

    def failure(
        self, now: float, rule: EjectionRule, may_eject: bool, reason: str, immediate: bool = False
    ) -> Ejection | None:
        """Count a failed attempt; eject when the rule says so and the cluster allows one more ejection.
        ``immediate``: this failure alone is enough (a provider's 429)."""
        self.readmit(now, rule)
        if self.ejected(now):
            return None  # an attempt that was already under way when the endpoint was ejected
        self.consecutive += 1
        threshold = 1 if self.probation or immediate else rule.consecutive_failures
        if self.consecutive < threshold or not may_eject:
            return None
        return self._eject(now, min(rule.max_s, rule.base_s * (self.ejections + 1)), reason)

    def hold(self, now: float, seconds: float, rule: EjectionRule, reason: str) -> Ejection | None:
        """Eject for an explicit time (the upstream's ``Retry-After``), capped by the rule's maximum."""
        seconds = min(rule.max_s, seconds)
        if seconds <= 0 or now + seconds <= self.ejected_until:
            return None
        ejection = self._eject(now, seconds, reason)
        self.held = True
        return ejection

    def _eject(self, now: float, seconds: float, reason: str) -> Ejection:
        self.ejections += 1
        self.total_ejections += 1
        self.ejected_until = now + seconds
        self.consecutive = 0
        self.probation = 0
        self.last_reason = reason
        self.held = False
        return Ejection(seconds, self.ejections, reason)


def may_eject(ejected: int, total: int, max_percent: float) -> bool:
    """Whether one more of ``total`` endpoints may be ejected when ``ejected`` already are.

    One endpoint may always be ejected (as in Envoy), whatever the percentage says."""
    if total <= 0:
        return False
    return ejected == 0 or (ejected + 1) * 100 <= max_percent * total
