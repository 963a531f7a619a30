"""The one import namespace over the repository's top-level folders.

The repository keeps the folders the product's design names (``protocol/``, ``agent/``,
``collector/``, ``simulator/``); installed, they are ``settleguard.protocol``,
``settleguard.agent`` and so on, so nothing with a generic name lands at the top of
site-packages. Everything else about the distribution is in ``pyproject.toml``.
"""

from setuptools import find_packages, setup

PARTS = ("protocol", "agent", "collector", "simulator")

package_dir = {"settleguard": "settleguard"}
packages = find_packages(include=["settleguard", "settleguard.*"])
for part in PARTS:
    package_dir[f"settleguard.{part}"] = part
    packages += [f"settleguard.{name}" for name in find_packages(include=[part, f"{part}.*"])]

setup(package_dir=package_dir, packages=packages)
