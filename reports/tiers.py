"""DORA's performance tiers: the 2023 Accelerate State of DevOps Report clusters per
metric, as one table (``TIERS``), and ``classify`` to place a figure in its band.

The figures are the commonly quoted ones (see ``TIER_SOURCE``); rework rate has no
published tiers. Units: deployments per day, seconds, or a fraction 0..1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

HOUR = 3600.0
DAY = 24 * HOUR
WEEK = 7 * DAY
MONTH = 30 * DAY
"""A month is 30 days when turning DORA's wording into seconds."""


class Tier(str, Enum):
    """A DORA software delivery performance cluster."""

    ELITE = "elite"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


@dataclass(frozen=True)
class Band:
    """One tier of one metric: the report's wording and the limit a value must be within.

    ``limit`` is in the metric's unit; None means "anything left" (the last tier).
    ``inclusive`` says whether a value equal to the limit belongs to this tier.
    """

    tier: Tier
    wording: str
    limit: float | None
    inclusive: bool


@dataclass(frozen=True)
class TierTable:
    """A metric's tiers, best first. ``higher_is_better`` for frequency, lower for the rest."""

    unit: str
    higher_is_better: bool
    bands: tuple[Band, ...]
    source: str
    note: str = ""


TIER_SOURCE = (
    "Google Cloud / DORA, 2023 Accelerate State of DevOps Report, software delivery "
    "performance clusters (https://dora.dev/research/2023/dora-report/); as summarised in "
    "S. Fenton, 'The 2023 DevOps performance clusters', Octopus Deploy blog, 6 Oct 2023 "
    "(https://octopus.com/blog/software-delivery-performance-clusters-2023)"
)

# Caveat: these figures are the 2023 report's clusters as commonly quoted (and as two
# independent recollections agree: its low cluster has the same throughput bands as
# medium); the sources searched here did not show the report's table itself, so they have
# not been checked against it. Fix them in this one table if they differ.
# Boundaries read the report's wording literally: "less than" is strict, "between A and B"
# includes both ends, and a value shared by a strict "< A" and a "between A and B" goes to
# the latter (worse) tier. Values beyond the low tier's far end (slower than six months)
# and in gaps between tiers (recovery between one week and one month) are low: there is
# no tier below low. Change failure rates are the clusters' typical rates; a rate at most
# a cluster's value belongs to it.
TIERS: dict[str, TierTable] = {
    "deployment_frequency": TierTable(
        unit="deployments/day",
        higher_is_better=True,
        bands=(
            Band(Tier.ELITE, "on demand (multiple deploys per day)", 1.0, False),
            Band(Tier.HIGH, "between once per day and once per week", 1.0 / 7, True),
            Band(Tier.MEDIUM, "between once per week and once per month", 1.0 / 30, True),
            Band(Tier.LOW, "between once per week and once per month (the 2023 low cluster shares "
                           "medium's band; rolloutlab calls that band medium and anything rarer low)", None, True),
        ),
        source=TIER_SOURCE,
    ),
    "change_lead_time": TierTable(
        unit="s",
        higher_is_better=False,
        bands=(
            Band(Tier.ELITE, "less than one day", DAY, False),
            Band(Tier.HIGH, "between one day and one week", WEEK, True),
            Band(Tier.MEDIUM, "between one week and one month", MONTH, True),
            Band(Tier.LOW, "between one week and one month (the 2023 low cluster shares medium's "
                           "band; rolloutlab calls that band medium and anything slower low)", None, True),
        ),
        source=TIER_SOURCE,
    ),
    "change_failure_rate": TierTable(
        unit="fraction",
        higher_is_better=False,
        bands=(
            Band(Tier.ELITE, "5%", 0.05, True),
            Band(Tier.HIGH, "10%", 0.10, True),
            Band(Tier.MEDIUM, "15%", 0.15, True),
            Band(Tier.LOW, "64%", None, True),
        ),
        source=TIER_SOURCE,
    ),
    "failed_deployment_recovery_time": TierTable(
        unit="s",
        higher_is_better=False,
        bands=(
            Band(Tier.ELITE, "less than one hour", HOUR, False),
            Band(Tier.HIGH, "less than one day", DAY, False),
            Band(Tier.MEDIUM, "between one day and one week", WEEK, True),
            Band(Tier.LOW, "between one month and six months", None, True),
        ),
        source=TIER_SOURCE,
    ),
    "deployment_rework_rate": TierTable(
        unit="fraction",
        higher_is_better=False,
        bands=(),
        source="DORA, 2024 Accelerate State of DevOps Report",
        note="deployment rework rate was introduced in DORA 2024 without published tiers",
    ),
}
"""The DORA performance tiers per metric, best first, with the cited source."""


def classify(metric: str, value: float | None) -> Tier | None:
    """The DORA tier of ``value`` for ``metric`` (a ``TIERS`` key), None if it has no tiers.

    Units: deployments per day, seconds, or a fraction 0..1 (see ``TierTable.unit``). At a
    boundary the band's ``inclusive`` flag decides: exactly one deployment per day is
    high (elite is *multiple* per day), a lead time of exactly one day is high (elite is
    *less than* a day), one week is still high, a recovery of exactly one hour is high, a
    change failure rate of exactly 5% is elite. None or NaN values have no tier.
    """
    table = TIERS.get(metric)
    if table is None:
        raise KeyError(f"unknown DORA metric {metric!r}; expected one of {', '.join(TIERS)}")
    if value is None or not table.bands or (isinstance(value, float) and math.isnan(value)):
        return None
    for band in table.bands:
        if band.limit is None:
            return band.tier
        if table.higher_is_better:
            within = value >= band.limit if band.inclusive else value > band.limit
        else:
            within = value <= band.limit if band.inclusive else value < band.limit
        if within:
            return band.tier
    return table.bands[-1].tier
