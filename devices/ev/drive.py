"""The car's longitudinal motion as the rig commands it (HIL_VehicleSim).

In D or R the speed moves toward the target at the commanded rate (m/s²;
0 means the default 3 m/s²); in N the car coasts down at 0.5 m/s² (rolling
resistance); in P it brakes to a stop at the commanded rate. The reported
gear follows the command at once; ``VehicleSpeed`` is unsigned, so R
reports the magnitude.
"""

from __future__ import annotations

from collections.abc import Callable

GEAR_P, GEAR_R, GEAR_N, GEAR_D = 0, 1, 2, 3
GEARS = {GEAR_P: "P", GEAR_R: "R", GEAR_N: "N", GEAR_D: "D", 7: "SNA"}
PARK_DRIVE_NEUTRAL = [GEAR_P, GEAR_D, GEAR_N]  # ev:unlock_after_neutral_shift's sequence
DEFAULT_ACCEL = 3.0  # m/s²
COAST_DECEL = 0.5  # m/s², rolling resistance in N


class Drive:
    """Speed and gear (called under the emulator's lock)."""

    def __init__(self) -> None:
        self.speed = 0.0  # km/h, unquantized
        self.reported = 0.0  # km/h as the DBC carries it
        self.target = 0.0
        self.accel = DEFAULT_ACCEL
        self.gear = GEAR_P
        self.shifts = [GEAR_P]  # the last gears engaged, oldest first (the BCM reads them)

    def command(self, target_kmh: float, gear: int, accel: float) -> None:
        if gear != self.gear:
            self.shifts = [*self.shifts[-2:], gear]
        self.target, self.gear = target_kmh, gear
        self.accel = accel if accel > 0 else DEFAULT_ACCEL

    def step(self, dt: float, quantize: Callable[[float], float]) -> float:
        """Advance ``dt`` s; returns the acceleration (m/s²) of this step."""
        before = self.speed
        self.speed = _approach(self.speed, *self._goal(), dt)
        self.reported = quantize(self.speed)
        return (self.speed - before) / 3.6 / dt if dt > 0 else 0.0

    def _goal(self) -> tuple[float, float]:
        """(target km/h, rate m/s²) for the current gear."""
        if self.gear in (GEAR_D, GEAR_R):
            return self.target, self.accel
        if self.gear == GEAR_N:
            return 0.0, COAST_DECEL
        return 0.0, self.accel


def _approach(speed: float, target: float, rate_ms2: float, dt: float) -> float:
    """``speed`` moved toward ``target`` by at most ``rate`` (m/s²) over ``dt``."""
    step = rate_ms2 * 3.6 * dt
    if speed < target:
        return min(target, speed + step)
    return max(target, speed - step)
