"""Who sends the load generator's requests: a fixed population of users, in segments.

A segment is a group of users whose requests all carry the same headers (``x-user-group:
internal``, a ``cookie``): what a header route or a flag targets. Users are numbered
``0 .. users-1``; each segment owns a block of them in the order given (its share of the
users, rounded, at least one), and the users after the last block are "everyone else"
(no segment, no header). Every request carries ``X-User-Id: u<number>``, so a route or a
flag that is sticky per user sees the same user again.

Each scheduled request is drawn independently and reproducibly, from a stream of its own
per target (``SeedSequence(seed, spawn_key=(crc32(target), 1))``: independent of the
arrival stream, which is ``(crc32(target),)``): the segment by its share of requests (by
default its share of users: its users send like everyone else's), then a user of that
segment uniformly, then whether the request is a write (a POST, with probability
``write_share``) or a read (a GET). Draws happen in arrival order, also for requests that
end up dropped, so a request's user depends only on the seed and its place in the stream.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

USER_HEADER = "X-User-Id"
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP token (RFC 9110 §5.1)
_SHARE_SLACK = 1e-9  # shares written as decimals may add up to 1 + rounding


@dataclass(frozen=True)
class UserSegment:
    """``users``: its share of the population (0 < share <= 1); ``requests``: its share
    of the requests (None: the same as its share of users); ``headers``: what every request
    of its users carries (names are case-insensitive, kept lower-cased)."""

    name: str
    users: float
    headers: Mapping[str, str] = field(default_factory=dict)
    requests: float | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("a segment needs a name")
        for share in (self.users, self.request_share):
            if not (0 < share <= 1):
                raise ValueError(f"segment {self.name!r}: shares must be within (0, 1], got {share}")
        for name, value in self.headers.items():
            if not _HEADER_NAME.match(name) or name.lower() == USER_HEADER.lower():
                raise ValueError(f"segment {self.name!r}: {name!r} is not a header a segment may set")
            if any(c in value for c in "\r\n\0"):
                raise ValueError(f"segment {self.name!r}: header {name!r} has a line break in its value")
        object.__setattr__(self, "headers", {k.lower(): v for k, v in self.headers.items()})

    @property
    def request_share(self) -> float:
        return self.users if self.requests is None else self.requests


@dataclass(frozen=True)
class UserRequest:
    """Who sends one request and how: the user, the segment (None: everyone else), the
    method and the headers to send."""

    user: str
    segment: str | None
    method: str
    headers: Mapping[str, str]


@dataclass(frozen=True)
class UserPopulation:
    """``users`` users (``segments`` among them, see the module docstring) whose requests
    are writes (POST) with probability ``write_share``."""

    users: int
    segments: tuple[UserSegment, ...] = ()
    write_share: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "segments", tuple(self.segments))
        if self.users < 1:
            raise ValueError(f"a population needs at least one user, got {self.users}")
        if not 0 <= self.write_share <= 1:
            raise ValueError(f"write_share must be within 0..1, got {self.write_share}")
        names = [s.name for s in self.segments]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate segment names: {names}")
        if sum(s.users for s in self.segments) > 1 + _SHARE_SLACK:
            raise ValueError("the segments' shares of users add up to more than 1")
        if sum(s.request_share for s in self.segments) > 1 + _SHARE_SLACK:
            raise ValueError("the segments' shares of requests add up to more than 1")
        if sum(self.blocks()) > self.users:
            raise ValueError(f"{self.users} users are too few for {len(self.segments)} segments "
                             "(each gets at least one)")
        if self.rest_users == 0 and self.rest_request_share > 1e-6:
            raise ValueError("the segments take every user but not every request: whose are the rest?")

    def blocks(self) -> list[int]:
        """Users per segment, in order: its share of users, rounded, at least one."""
        return [max(1, round(s.users * self.users)) for s in self.segments]

    @property
    def rest_users(self) -> int:
        return self.users - sum(self.blocks())

    @property
    def rest_request_share(self) -> float:
        return max(0.0, 1.0 - sum(s.request_share for s in self.segments))

    def segment_of(self, user: int) -> str | None:
        """The segment user number ``user`` belongs to (None: everyone else)."""
        start = 0
        for segment, size in zip(self.segments, self.blocks()):
            if user < start + size:
                return segment.name
            start += size
        return None


def user_rng(seed: int, target: str) -> np.random.Generator:
    """The user draws of target ``target``: independent of its arrival stream."""
    sequence = np.random.SeedSequence(seed, spawn_key=(zlib.crc32(target.encode()), 1))
    return np.random.Generator(np.random.PCG64(sequence))


class UserDraws:
    """Who sends each next request of one target (see the module docstring)."""

    def __init__(self, population: UserPopulation, seed: int, target: str) -> None:
        self.population = population
        self.rng = user_rng(seed, target)
        blocks = population.blocks()
        starts = np.concatenate([[0], np.cumsum(blocks)]).astype(int)
        # (segment or None, first user, users) per group; "everyone else" last
        self._groups: list[tuple[UserSegment | None, int, int]] = [
            (s, int(starts[i]), blocks[i]) for i, s in enumerate(population.segments)]
        shares = [s.request_share for s in population.segments]
        if population.rest_users:
            self._groups.append((None, int(starts[-1]), population.rest_users))
            shares.append(population.rest_request_share)
        total = sum(shares)
        self._cumulative = np.cumsum(np.array(shares) / total)

    def next(self) -> UserRequest:
        pick, within, write = self.rng.random(3)
        group = min(int(np.searchsorted(self._cumulative, pick, side="right")), len(self._groups) - 1)
        segment, first, size = self._groups[group]
        user = first + min(size - 1, math.floor(within * size))
        user_id = f"u{user}"
        headers = {USER_HEADER: user_id, **(segment.headers if segment is not None else {})}
        method = "POST" if write < self.population.write_share else "GET"
        return UserRequest(user_id, None if segment is None else segment.name, method, headers)


__all__ = ["USER_HEADER", "UserDraws", "UserPopulation", "UserRequest", "UserSegment", "user_rng"]
