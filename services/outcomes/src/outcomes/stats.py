"""Confidence intervals for report cells."""

from __future__ import annotations

import math

Z95 = 1.959963984540054


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for a proportion, as fractions in [0, 1]."""
    if trials <= 0:
        return (0.0, 0.0)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def poisson_rate(events: int, exposure: float, z: float = Z95) -> tuple[float, float]:
    """An approximate 95 % interval for a rate (Byar's approximation), per unit exposure."""
    if exposure <= 0:
        return (0.0, 0.0)
    if events == 0:
        low = 0.0
    else:
        a = events
        low = a * (1 - 1 / (9 * a) - z / (3 * math.sqrt(a))) ** 3
    b = events + 1
    high = b * (1 - 1 / (9 * b) + z / (3 * math.sqrt(b))) ** 3
    return (max(0.0, low) / exposure, high / exposure)
