"""Fixtures shared by the test files (the helpers themselves live in ``tests/helpers.py``)."""

import pytest
from helpers import x64_mode


@pytest.fixture
def x64():
    """Run the test with ``jax_enable_x64`` on."""
    with x64_mode():
        yield


# ---- hypothesis profiles (tests/test_properties.py; issue 9) ---------------------------------------------
# Each new shape is a compile, so no deadline. "ci": the default suite, 10 derandomized examples per property
# (the same inputs on every run; no example database). "slow": the -m slow variants, 100 random examples.
# "dev": 10 random examples with the example database, for local runs. GENMODELS_HYPOTHESIS_PROFILE picks
# the profile of the default suite.
import os as _os  # noqa: E402

from hypothesis import HealthCheck as _HealthCheck  # noqa: E402
from hypothesis import settings as _settings  # noqa: E402

_SLOW_CHECKS = [_HealthCheck.too_slow, _HealthCheck.data_too_large, _HealthCheck.filter_too_much]
_settings.register_profile("ci", max_examples=10, deadline=None, derandomize=True, database=None,
                           suppress_health_check=_SLOW_CHECKS, print_blob=True)  # fmt: skip
_settings.register_profile("slow", max_examples=100, deadline=None, suppress_health_check=_SLOW_CHECKS,
                           print_blob=True)  # fmt: skip
_settings.register_profile("dev", max_examples=10, deadline=None, suppress_health_check=_SLOW_CHECKS)
_settings.load_profile(_os.environ.get("GENMODELS_HYPOTHESIS_PROFILE", "ci"))
