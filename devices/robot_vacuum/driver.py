"""The robot vacuum seen from the bench (which plays its Wi-Fi module)."""

from __future__ import annotations

from hil.miot.acceptance import AcceptanceModuleDriver


class RobotVacuumDriver(AcceptanceModuleDriver):
    """``vacuum.start_sweep()``, ``vacuum.dock()``, ``vacuum.status``, ``vacuum.on_dock``."""

    def start_sweep(self) -> None:
        """Start (or resume) a clean; ``ProtocolError`` -4004 on a too-low battery."""
        self.action("vacuum.start-sweep")

    def pause(self) -> None:
        self.action("vacuum.pause")

    def dock(self) -> None:
        """Send the robot home to its dock."""
        self.action("vacuum.dock")

    def set_occupancy(self, home: bool) -> None:
        """What the hub tells the robot: is someone at home?"""
        self.set("home.occupancy", home)

    def schedule_in(self, seconds: int) -> None:
        """Arm a clean ``seconds`` plan seconds from now (0 cancels)."""
        self.set("schedule.start-in", seconds)

    @property
    def status(self) -> str:
        """The status name, read now: ``sweeping``, ``returning``, ``charging``…"""
        return self.definition.signals["vacuum.status"].label(self.get("vacuum.status"))

    @property
    def on_dock(self) -> bool:
        return bool(self.get("vacuum.on-dock"))

    @property
    def battery_pct(self) -> int:
        return int(self.get("battery.level"))
