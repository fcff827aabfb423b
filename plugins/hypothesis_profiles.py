"""Hypothesis profiles: `dev` on a learner's machine, `ci` (derandomized, no database) in CI.

One environment variable picks the profile: KATA_HYPOTHESIS_PROFILE=dev|ci. Unset, it is `ci`
when the CI variable is set (as CI services do) and `dev` otherwise.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

PROFILE_VARIABLE = "KATA_HYPOTHESIS_PROFILE"
PROFILES = ("dev", "ci")


def pytest_configure(config: pytest.Config) -> None:
    # Schedules run in well under a millisecond, but a deadline would turn a slow shared CI
    # machine into flaky failures; the time budgets plugin bounds the whole test instead.
    settings.register_profile("dev", deadline=None, max_examples=100)
    settings.register_profile(
        "ci",
        deadline=None,
        max_examples=100,
        derandomize=True,
        database=None,
        print_blob=True,
        suppress_health_check=[HealthCheck.too_slow],
    )
    default = "ci" if os.environ.get("CI") else "dev"
    profile = os.environ.get(PROFILE_VARIABLE, default)
    if profile not in PROFILES:
        raise pytest.UsageError(
            f"{PROFILE_VARIABLE}={profile}: valid profiles are {', '.join(PROFILES)}"
        )
    settings.load_profile(profile)


def pytest_report_header(config: pytest.Config) -> str:
    return f"hypothesis profile: {settings._current_profile}"
