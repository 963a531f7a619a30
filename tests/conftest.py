"""Root conftest: shared fixtures live in tests/helpers (PostgreSQL, Mosquitto)."""

pytest_plugins = ["tests.helpers.fixtures"]
