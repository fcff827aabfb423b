"""Hypothesis profiles: `dev` on a learner's machine, `ci` (derandomized, no database) in CI,
`verdict` in the self-check's child runs.

One environment variable picks the profile: KATA_HYPOTHESIS_PROFILE=dev|ci|verdict. Unset, it is
`ci` when the CI variable is set (as CI services do) and `dev` otherwise. The self-check's children
(KATA_VERDICT_ONLY=1, set by `pytest --kata-verify`) use `verdict`: `ci` without the shrink phase. The self-check needs only
whether a suite fails and which test failed first; a failing example is found, and replayed to
fail the test, the same way with or without shrinking, so no verdict changes. A learner's own
run still shrinks, to show the smallest example.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, Phase, settings

from plugins.settings import VERDICT_ONLY_VARIABLE

PROFILE_VARIABLE = "KATA_HYPOTHESIS_PROFILE"
PROFILES = ("dev", "ci", "verdict")


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
    settings.register_profile(
        "verdict", parent=settings.get_profile("ci"), phases=[Phase.explicit, Phase.generate]
    )
    default = "ci" if os.environ.get("CI") else "dev"
    profile = os.environ.get(PROFILE_VARIABLE, default)
    if os.environ.get(VERDICT_ONLY_VARIABLE, "") == "1":
        profile = "verdict"
    if profile not in PROFILES:
        raise pytest.UsageError(
            f"{PROFILE_VARIABLE}={profile}: valid profiles are {', '.join(PROFILES)}"
        )
    settings.load_profile(profile)


def pytest_report_header(config: pytest.Config) -> str:
    return f"hypothesis profile: {settings._current_profile}"
