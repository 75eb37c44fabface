"""A fake HID transport for SpaceMouse devices, at the lowest seam there is.

pyspacemouse finds devices with ``easyhid.Enumeration`` and reads raw HID reports from an
``easyhid.HIDDevice``. :func:`install_fake_hid` replaces the enumeration that ``pyspacemouse.api``
uses with one listing :class:`FakeHidDevice` objects, so the real ``pyspacemouse.open()``, the real
device tables (devices.toml), the real axis conventions and the real report decoding all run; only
the bytes come from a queue instead of a USB cable. :class:`SpaceMouseReports` builds genuine report
bytes for any model pyspacemouse knows, so tests, benchmarks and end-to-end runs can replay an
operator's hand.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any, Protocol, Self

import pyspacemouse
from pyspacemouse import AxisConvention, DeviceInfo, apply_axis_convention, get_device_specs

# The exception class easyhid raises for a failed open/read; pyspacemouse catches it by this name.
from pyspacemouse.device import HIDException

__all__ = [
    "FakeEnumeration",
    "FakeHidBus",
    "FakeHidDevice",
    "HIDException",
    "SpaceMouseReports",
    "install_fake_hid",
    "resolve_model",
]


def resolve_model(model: str) -> DeviceInfo:
    """Look a model up in pyspacemouse's device table; spaces are ignored ("SpaceMouse Compact")."""
    specs = get_device_specs()
    key = model.replace(" ", "")
    if key not in specs:
        raise ValueError(f"unknown SpaceMouse model {model!r}; pyspacemouse knows: {', '.join(specs)}")
    return specs[key]


class FakeHidDevice:
    """Stands in for ``easyhid.HIDDevice``: same attributes, same open/read/close behaviour.

    Reports pushed with :meth:`push` are returned one per :meth:`read`, padded or cut to the size
    asked for (as easyhid does); an empty read returns an empty bytearray (non-blocking). After
    :meth:`unplug` the device disappears from enumeration and an open handle fails on every read
    until it is closed; :meth:`replug` makes it visible again with an empty report queue.
    """

    def __init__(
        self,
        vendor_id: int,
        product_id: int,
        path: str = "/dev/hidraw-fake0",
        product_string: str = "SpaceMouse",
        manufacturer_string: str = "3Dconnexion",
        serial_number: str = "FAKE0001",
        release_number: int = 0x0100,
        interface_number: int = 0,
        usage_page: int = 0x01,
        usage: int = 0x08,
    ) -> None:
        self.vendor_id = vendor_id
        self.product_id = product_id
        self.path = path
        self.product_string = product_string
        self.manufacturer_string = manufacturer_string
        self.serial_number = serial_number
        self.release_number = release_number
        self.interface_number = interface_number
        self.usage_page = usage_page
        self.usage = usage
        self.plugged = True
        self.nonblocking = False
        self.open_count = 0
        self.close_count = 0
        self.read_count = 0
        self.written: list[bytes] = []
        self._is_open = False
        self._broken: BaseException | None = None
        self._queue: deque[bytes] = deque()
        self._lock = threading.Lock()

    @classmethod
    def for_model(cls, model: str, **kwargs: Any) -> FakeHidDevice:
        """A fake with the vendor/product ids of a model from pyspacemouse's devices.toml."""
        spec = resolve_model(model)
        kwargs.setdefault("product_string", spec.name)
        return cls(vendor_id=spec.vendor_id, product_id=spec.product_id, **kwargs)

    # -- the easyhid.HIDDevice surface -------------------------------------------------
    def open(self) -> None:
        with self._lock:
            if not self.plugged:
                raise HIDException("Failed to open device")
            if self._is_open:
                raise HIDException("Failed to open device: HIDDevice already open")
            self._is_open = True
            self._broken = None
            self.open_count += 1

    def close(self) -> None:
        with self._lock:
            if self._is_open:
                self._is_open = False
                self.close_count += 1
            self._broken = None

    def set_nonblocking(self, enable_nonblocking: bool) -> None:
        self.nonblocking = bool(enable_nonblocking)

    def is_open(self) -> bool:
        return self._is_open

    def is_connected(self) -> bool:
        return self.plugged

    def read(self, size: int = 64, timeout: int | None = None) -> bytearray:
        with self._lock:
            self.read_count += 1
            if self._broken is not None:
                raise self._broken
            if not self._is_open:
                raise HIDException("HIDDevice not open")
            if not self._queue:
                return bytearray()
            report = self._queue.popleft()
        out = bytearray(size)
        n = min(size, len(report))
        out[:n] = report[:n]
        return out

    def write(self, data: bytes | bytearray, report_id: int = 0) -> None:
        with self._lock:
            if self._broken is not None or not self._is_open:
                raise HIDException("Failed to write to HID device")
            self.written.append(bytes(data))

    def description(self) -> str:
        return f"{self.path} {self.vendor_id:04x}:{self.product_id:04x} {self.product_string}"

    # -- test controls -------------------------------------------------------------------
    def push(self, *reports: bytes | bytearray | Iterable[bytes | bytearray]) -> None:
        """Queue reports as if the device sent them (reports or lists of reports)."""
        flat: list[bytes] = []
        for r in reports:
            if isinstance(r, bytes | bytearray):
                flat.append(bytes(r))
            else:
                flat.extend(bytes(x) for x in r)
        with self._lock:
            if not self.plugged:
                raise RuntimeError("cannot push reports to an unplugged fake device")
            self._queue.extend(flat)

    @property
    def pending(self) -> int:
        """Reports queued and not yet read."""
        with self._lock:
            return len(self._queue)

    def unplug(self, error: BaseException | None = None) -> None:
        """Pull the cable: queued reports are lost, an open handle fails from now on."""
        with self._lock:
            self.plugged = False
            self._queue.clear()
            if self._is_open:
                default = HIDException("Failed to read from HID device: -1")
                self._broken = error if error is not None else default

    def replug(self) -> None:
        """Plug the cable back in: the device is listed again and can be opened."""
        with self._lock:
            self.plugged = True


class FakeEnumeration:
    """Stands in for ``easyhid.Enumeration``: a snapshot of the devices plugged in right now."""

    def __init__(self, devices: Sequence[FakeHidDevice], vid: int = 0, pid: int = 0) -> None:
        self.device_list = [
            d for d in devices if d.plugged and vid in (0, d.vendor_id) and pid in (0, d.product_id)
        ]

    def show(self) -> None:
        for dev in self.device_list:
            print(dev.description())

    def find(
        self,
        vid: int | None = None,
        pid: int | None = None,
        serial: str | None = None,
        interface: int | None = None,
        path: str | None = None,
        **_ignored: Any,
    ) -> list[FakeHidDevice]:
        return [
            d
            for d in self.device_list
            if vid in (0, None, d.vendor_id)
            and pid in (0, None, d.product_id)
            and (not serial or d.serial_number == serial)
            and (interface is None or d.interface_number == interface)
            and (not path or d.path == path)
        ]


class _MonkeyPatch(Protocol):
    def setattr(self, target: Any, name: str, value: Any, raising: bool = ...) -> None: ...


class FakeHidBus:
    """The set of fake devices "plugged into" this machine, and the patch that shows them to pyspacemouse.

    Usable as a context manager: leaving it restores the real ``Enumeration``.
    """

    def __init__(self, devices: Iterable[FakeHidDevice] = ()) -> None:
        self.devices: list[FakeHidDevice] = list(devices)
        self._saved: Any = None
        self._installed = False

    def add(self, device: FakeHidDevice) -> FakeHidDevice:
        self.devices.append(device)
        return device

    def enumerate(self, vid: int = 0, pid: int = 0) -> FakeEnumeration:
        """Drop-in for ``easyhid.Enumeration(vid, pid)``."""
        return FakeEnumeration(self.devices, vid, pid)

    def install(self, monkeypatch: _MonkeyPatch | None = None) -> Self:
        if monkeypatch is not None:
            monkeypatch.setattr(pyspacemouse.api, "Enumeration", self.enumerate)
        else:
            self._saved = pyspacemouse.api.Enumeration
            pyspacemouse.api.Enumeration = self.enumerate
            self._installed = True
        return self

    def uninstall(self) -> None:
        if self._installed:
            pyspacemouse.api.Enumeration = self._saved
            self._installed = False

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.uninstall()


def install_fake_hid(monkeypatch: _MonkeyPatch | None, devices: Iterable[FakeHidDevice]) -> FakeHidBus:
    """Show ``devices`` to pyspacemouse instead of the real HID bus.

    With pytest's ``monkeypatch`` the patch is undone at test teardown; with ``None`` use the returned
    bus as a context manager (or call ``uninstall()``)::

        with install_fake_hid(None, [FakeHidDevice.for_model("SpaceMouseCompact")]) as bus:
            ...
    """
    return FakeHidBus(devices).install(monkeypatch)


def _int16_le(value: int) -> tuple[int, int]:
    v = max(-32768, min(32767, int(value))) & 0xFFFF
    return v & 0xFF, v >> 8


class SpaceMouseReports:
    """Builds the raw HID reports a given SpaceMouse model sends, from pyspacemouse's device table.

    Models with separate channels send translation on report 1 and rotation on report 2; models
    with one channel (the Wireless and Pro Wireless families) send all six axes on report 1.
    Buttons are a bitfield on report 3.
    """

    def __init__(self, model: str = "SpaceMouseCompact") -> None:
        self.spec = resolve_model(model)
        self.model = self.spec.name
        self._hid = apply_axis_convention(self.spec, AxisConvention.HID)
        self._z_up = apply_axis_convention(self.spec, AxisConvention.HID_Z_UP)

    @property
    def vendor_id(self) -> int:
        return self.spec.vendor_id

    @property
    def product_id(self) -> int:
        return self.spec.product_id

    @property
    def button_names(self) -> tuple[str, ...]:
        return self.spec.button_names

    def device(self, path: str = "/dev/hidraw-fake0", **kwargs: Any) -> FakeHidDevice:
        """A fake device of this model."""
        return FakeHidDevice.for_model(self.model, path=path, **kwargs)

    def _encode(self, spec: DeviceInfo, counts: dict[str, int]) -> list[bytes]:
        channels: dict[int, bytearray] = {}
        for axis_spec in spec.mappings.values():
            size = max(axis_spec.byte1, axis_spec.byte2) + 1
            buf = channels.setdefault(axis_spec.channel, bytearray([axis_spec.channel]))
            if len(buf) < size:
                buf.extend(bytes(size - len(buf)))
        for axis, count in counts.items():
            s = spec.mappings[axis]
            lo, hi = _int16_le(count * s.scale)
            channels[s.channel][s.byte1] = lo
            channels[s.channel][s.byte2] = hi
        return [bytes(channels[c]) for c in sorted(channels)]

    def motion(
        self,
        x: float = 0.0,
        y: float = 0.0,
        z: float = 0.0,
        roll: float = 0.0,
        pitch: float = 0.0,
        yaw: float = 0.0,
    ) -> list[bytes]:
        """Reports that pyspacemouse decodes (with ``AxisConvention.HID_Z_UP``) to these axis values.

        Values are in pyspacemouse units (1.0 = ``axis_scale`` counts, the usual full deflection).
        """
        values = {"x": x, "y": y, "z": z, "roll": roll, "pitch": pitch, "yaw": yaw}
        scale = self.spec.axis_scale
        return self._encode(self._z_up, {k: round(v * scale) for k, v in values.items()})

    def motion_counts(
        self, x: int = 0, y: int = 0, z: int = 0, rx: int = 0, ry: int = 0, rz: int = 0
    ) -> list[bytes]:
        """Reports carrying raw HID counts (HID frame: +x right, +y toward the user, +z down)."""
        counts = {"x": x, "y": y, "z": z, "roll": rx, "pitch": ry, "yaw": rz}
        return self._encode(self._hid, counts)

    def release(self) -> list[bytes]:
        """The all-zero motion reports a device sends when the cap is let go."""
        return self.motion()

    def buttons(self, *pressed: str | int) -> bytes:
        """A button report with exactly these buttons down (names from devices.toml or indices)."""
        specs = self.spec.button_specs
        if not specs:
            raise ValueError(f"{self.model} has no buttons")
        channel = specs[0].channel
        buf = bytearray([channel]) + bytes(max(b.byte for b in specs))
        for p in pressed:
            if isinstance(p, str):
                idx = self.spec.button_names.index(p) if p in self.spec.button_names else -1
            else:
                idx = p
            if not 0 <= idx < len(specs):
                raise ValueError(f"{self.model} has no button {p!r}; buttons: {self.spec.button_names}")
            b = specs[idx]
            buf[b.byte] |= 1 << b.bit
        return bytes(buf)
