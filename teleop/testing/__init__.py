"""Fakes at the lowest hardware seam, for tests, benchmarks and end-to-end runs."""

from takeover.teleop.testing.fake_hid import (
    FakeEnumeration,
    FakeHidBus,
    FakeHidDevice,
    SpaceMouseReports,
    install_fake_hid,
    resolve_model,
)

__all__ = [
    "FakeEnumeration",
    "FakeHidBus",
    "FakeHidDevice",
    "SpaceMouseReports",
    "install_fake_hid",
    "resolve_model",
]
