"""Root conftest: shared fixtures live in tests/helpers (PostgreSQL, Mosquitto).

Under CI (``CI`` set, as ``.ci/run`` is called) hypothesis runs derandomized: every run tries the
same examples, so a red CI always means a change broke something, never a lucky draw. Local
runs and ``make fuzz`` stay random and keep finding new cases.
"""

import os

from hypothesis import settings

pytest_plugins = ["tests.helpers.fixtures"]

settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")
