"""The phone seen from the bench (which plays the module of its harness app)."""

from __future__ import annotations

import time

from hil.bench.driver import Sample
from hil.errors import DeviceTimeout
from hil.miot.module import MiotModuleDriver


class PhoneDriver(MiotModuleDriver):
    """``phone.good_morning()``, ``phone.paired``, ``phone.wait_notification(...)``."""

    @property
    def paired(self) -> bool:
        """The phone holds a paired digital key, read now."""
        return bool(self.get("key.paired"))

    @property
    def key_id(self) -> str:
        return str(self.get("key.key-id"))

    @property
    def hub_connected(self) -> bool:
        """The app holds a live connection to the home hub, read now."""
        return bool(self.get("app.hub-connected"))

    @property
    def notification_count(self) -> int:
        """Notifications received since the app started, read now."""
        return int(self.get("notifications.count"))

    def last_notification(self) -> dict[str, str]:
        """The last notification's ``category``, ``text`` and ``device``, read now."""
        return {
            key: str(self.get(f"notifications.last-{key}"))
            for key in ("category", "text", "device")
        }

    def good_morning(self) -> None:
        """The "good morning" app command; ``ProtocolError`` (-4004) when the hub refuses it."""
        self.action("app.good-morning")

    def notifications_since(self, since: float) -> list[float]:
        """Capture timestamps of the ``notification-received`` events at or after ``since``."""
        return [
            s.t for s in self.samples("notifications.notification-received", since) if s.t >= since
        ]

    def wait_notification(self, since: float, timeout: float) -> Sample:
        """The first ``notification-received`` event at or after ``since`` (bounded wait)."""
        deadline = time.monotonic() + timeout
        signal = "notifications.notification-received"
        while True:
            for sample in self.samples(signal, since):
                if sample.t >= since:
                    return sample
            if time.monotonic() > deadline:
                raise DeviceTimeout(
                    f"no notification within {timeout:g} s", device=self.name, timeout=timeout
                )
            self.check_link()
            time.sleep(0.02)
