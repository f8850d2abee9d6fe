"""What a step's failure is: a verdict with a category, not a crash."""

from __future__ import annotations

from typing import Any

GRACE_S = 0.2  # frames stamped before a deadline may still be in flight this long
LATE_WATCH_S = 1.5  # how long past a missed deadline to look for the late arrival
POLL_S = 0.005

CATEGORY_DEADLINE = "deadline missed"
CATEGORY_CONDITION = "expectation not met"
CATEGORY_LIMIT = "measurement out of limits"
CATEGORY_DEVICE = "device not responding"
CATEGORY_PLAN = "plan error"
CATEGORY_SAFETY = "safety violation"
CATEGORY_OPERATOR = "operator"
CATEGORY_TIMEOUT = "plan timeout"  # the watchdog aborted a plan that outlived its timeout
# neither passed nor failed: the method's conditions (supply, instrument) were not met
CATEGORY_INVALID = "invalid measurement conditions"


class StepFailed(Exception):
    """The device did not do what the step expects (a verdict, not a crash)."""

    def __init__(self, message: str, category: str, observed: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.category = category
        self.observed = observed or {}


def fmt_labels(labels: dict[str, str]) -> str:
    return ", ".join(f"{k} = {v}" for k, v in labels.items())


class MeasurementInvalid(StepFailed):
    """The run cannot be judged: the measurement conditions were out of bounds.

    The step's (and so the plan's) status is INVALID, not FAILED: the device
    was neither shown to comply nor shown not to (IEC 62301: "a run outside
    them is invalid, not failed").
    """

    def __init__(self, message: str, observed: dict[str, Any] | None = None) -> None:
        super().__init__(message, CATEGORY_INVALID, observed)
