"""Users and their requests: segments, reads and writes, and where each kind of request
goes under the routes and the feature flag in force.

The simulator never draws a user. The scenario's users fall into groups (its segments,
then "everyone else"), and their requests into classes: a group's reads and its writes,
each carrying the group's headers (``RequestTraits``). Routing decides per class, with
the same function the routers are configured from (``strategies.routes.route_request``):

- a header route sends the whole class to the new version;
- otherwise the class is split by the weight (each request on its own, as a mesh does);
- a mirror route copies a share of the class to the new version, answered to nobody.

A feature flag decides per user, and stickily (flagd's ``fractional`` hashes the user's
id): a user of a cohort the exposure matches always has the flag on; of the others, the
users in the lowest ``percentage`` hash buckets have it on, so users who had it at 5%
keep it at 10%. :class:`UserHarm` keeps, per group and per hash bucket, how much release
harm a user of that bucket met (the expected number of bad answers), which is all
"users affected" needs: a user met no bad answer with probability exp(-harm) (a Poisson
stream of their requests, thinned by the chance each one is bad).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rolloutlab.scenarios.schema import Traffic
from rolloutlab.strategies.actions import SetFlagExposure
from rolloutlab.strategies.routes import HeaderRoute, MirrorRoute, RequestTraits, header_matches, route_request

BUCKETS = 100
"""Hash buckets of users: a flag's percentage is a whole number, as flagd's fractional."""
EVERYONE_ELSE = "everyone else"


@dataclass(frozen=True, slots=True)
class UserGroup:
    """A segment of users (or everyone in none)."""

    name: str
    users: int
    request_share: float  # of all user requests
    headers: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class RequestClass:
    """Requests of one group and one method: what routing can tell apart."""

    group: int
    share: float  # of all user requests
    write: bool
    traits: RequestTraits


@dataclass(frozen=True, slots=True)
class ClassRouting:
    """Where one class goes now: its share on the new version, and its share copied there."""

    to_canary: float
    mirror: float


def user_groups(traffic: Traffic) -> tuple[UserGroup, ...]:
    """The scenario's segments, then everyone else (when any users or requests are left);
    users are whole numbers that add up to ``traffic.users``."""
    shares = [(s.name, s.users, s.request_share, tuple(sorted(s.headers.items()))) for s in traffic.segments]
    rest_users = 1.0 - sum(s[1] for s in shares)
    rest_requests = 1.0 - sum(s[2] for s in shares)
    if rest_users > 1e-9 and rest_requests > 1e-9:
        shares.append((EVERYONE_ELSE, rest_users, rest_requests, ()))
    total_requests = sum(s[2] for s in shares)
    counts = _whole_users(traffic.users, [s[1] for s in shares])
    return tuple(UserGroup(name, n, req / total_requests, headers)
                 for (name, _, req, headers), n in zip(shares, counts))


def _whole_users(users: int, shares: Sequence[float]) -> list[int]:
    """Largest-remainder rounding: at least one user per group, totals kept."""
    raw = np.asarray(shares) / sum(shares) * users
    counts = np.maximum(1, np.floor(raw)).astype(int)
    for i in np.argsort(-(raw - np.floor(raw)))[: max(0, users - int(counts.sum()))]:
        counts[i] += 1
    return counts.tolist()


def request_classes(traffic: Traffic, groups: Sequence[UserGroup]) -> tuple[RequestClass, ...]:
    """Each group's reads (GET) and writes (POST), with the group's headers."""
    out = []
    for g, group in enumerate(groups):
        headers = dict(group.headers)
        for write, share in ((False, 1.0 - traffic.write_share), (True, traffic.write_share)):
            if share > 0:
                traits = RequestTraits("POST" if write else "GET", "/", headers)
                out.append(RequestClass(g, group.request_share * share, write, traits))
    return tuple(out)


def route_classes(classes: Sequence[RequestClass], routes: Sequence[HeaderRoute | MirrorRoute],
                  weight: float) -> tuple[ClassRouting, ...]:
    """Where each class goes with ``routes`` in force (precedence order) and the canary
    weight ``weight`` (0..1) for requests no header route claims."""
    out = []
    for cls in classes:
        routing = route_request(routes, cls.traits)
        out.append(ClassRouting(1.0 if routing.to_canary else weight, routing.mirror))
    return tuple(out)


def flag_on_buckets(groups: Sequence[UserGroup], exposure: SetFlagExposure | None) -> np.ndarray:
    """Per group, how many of the ``BUCKETS`` hash buckets have the flag on: all of a
    matched cohort, the lowest ``percentage`` of everyone else."""
    on = np.zeros(len(groups), dtype=int)
    if exposure is None:
        return on
    for g, group in enumerate(groups):
        cohort = bool(exposure.match) and header_matches(exposure.match, RequestTraits(headers=dict(group.headers)))
        on[g] = BUCKETS if cohort else exposure.percentage
    return on


class UserHarm:
    """Expected bad answers met so far by a user of each group and hash bucket."""

    def __init__(self, groups: Sequence[UserGroup]) -> None:
        self.groups = tuple(groups)
        self.harm = np.zeros((len(groups), BUCKETS))

    def add(self, group: int, requests_per_user: float, bad_on: float, bad_off: float, on_buckets: int) -> None:
        """A user of ``group`` sent ``requests_per_user`` requests in the interval; each was
        bad with probability ``bad_on`` if the user has the flag on, ``bad_off`` if not."""
        if requests_per_user <= 0 or (bad_on <= 0 and bad_off <= 0):
            return
        row = self.harm[group]
        if on_buckets > 0:
            row[:on_buckets] += requests_per_user * bad_on
        if on_buckets < BUCKETS:
            row[on_buckets:] += requests_per_user * bad_off

    def affected_share(self, rng: np.random.Generator | Callable[[], np.random.Generator]) -> float:
        """Share of all users who met at least one bad answer: per group and bucket,
        Binomial(users in the bucket, 1 - exp(-harm)). ``rng`` may be what makes the
        generator: a run in which nobody met a bad answer (most runs) draws nothing."""
        if not self.harm.any():
            return 0.0
        total = affected = 0
        for g, group in enumerate(self.groups):
            per_bucket = np.full(BUCKETS, group.users // BUCKETS)
            per_bucket[: group.users % BUCKETS] += 1
            p = -np.expm1(-self.harm[g])
            hit = p > 0
            if hit.any():
                if not isinstance(rng, np.random.Generator):
                    rng = rng()
                affected += int(rng.binomial(per_bucket[hit], np.minimum(1.0, p[hit])).sum())
            total += group.users
        return affected / total if total else 0.0
