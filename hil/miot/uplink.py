"""The module uplink: what a real Wi-Fi module does beside talking to its MCU.

A real appliance's Wi-Fi module forwards what the MCU reports to the cloud
or the home hub, and turns the hub's requests into downlinks. The bench plays
the module, so it does the same for an appliance whose bench entry has
``links: {hub: <hub device>}``: it connects to the hub's API over TCP
(``hil/hublink.py``) and

* pushes every ``properties_changed``, ``event_occured`` and accepted write
  it sees, by name (``oven.heater``), with the serial line's capture time;
* queues the hub's ``set``/``action`` calls as ordinary downlinks (they wait
  their turn behind the plan's own) and answers with the MCU's result code.

The hub's address is what its emulator published (``endpoint["api"]``) or,
for a real hub, ``settings: {api: "host:port"}`` on the hub's bench entry.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from hil import hublink
from hil.bench.links import LinkedDevice
from hil.errors import BenchError, ConfigError, DeviceError, ProtocolError
from hil.miot.codec import Value

if TYPE_CHECKING:
    from hil.miot.module import MiotModuleDriver

log = logging.getLogger(__name__)

HUB_ROLE = "hub"
ERR_INTERNAL = -4004
ERR_NO_SUCH = -4003
ERR_BAD_PARAMETER = -4006


def hub_address(device: str, hub: LinkedDevice) -> str:
    """The hub's API address: its emulator's endpoint, else its ``api`` setting."""
    address = hub.endpoint.get("api") or hub.settings.get("api")
    if not address:
        raise BenchError(
            f"device {device!r} links to hub {hub.name!r}, which publishes no API address: "
            f"give the hub's bench entry 'settings: {{api: \"host:port\"}}'"
        )
    try:
        hublink.parse_address(str(address))
    except ValueError as err:
        raise BenchError(f"hub {hub.name!r}: api address: {err}") from err
    return str(address)


class ModuleUplink:
    """Relays one appliance's reports to the hub and the hub's calls to the appliance."""

    def __init__(self, driver: MiotModuleDriver, address: str) -> None:
        self.driver = driver
        self.device = driver.name
        self.client = hublink.HubLinkClient(
            address,
            role="module",
            device=driver.name,
            model=driver.spec.model,
            on_call=self._call,
        )
        self.reports = 0

    @classmethod
    def for_links(
        cls, driver: MiotModuleDriver, links: Mapping[str, tuple[LinkedDevice, ...]]
    ) -> ModuleUplink | None:
        """An uplink if the bench links the appliance to a hub, else ``None``."""
        hubs = links.get(HUB_ROLE, ())
        if not hubs:
            return None
        if len(hubs) > 1:
            raise BenchError(
                f"device {driver.name!r}: a Wi-Fi module reaches one hub, "
                f"links name {[h.name for h in hubs]}"
            )
        return cls(driver, hub_address(driver.name, hubs[0]))

    def open(self) -> None:
        self.client.open()

    def close(self) -> None:
        self.client.close()

    # ----- up: called on the serial reader thread, so sends are bounded

    def property_changed(self, name: str, value: Value, t: float) -> None:
        self.reports += 1
        self.client.send(hublink.report_property(self.device, name, _json(value), t))

    def event(self, name: str, args: Mapping[str, Value], t: float) -> None:
        self.reports += 1
        clean = {k: _json(v) for k, v in args.items()}
        self.client.send(hublink.report_event(self.device, name, clean, t))

    # ----- down: the hub's calls, on the link's worker thread

    def _call(self, call: hublink.Message) -> hublink.Message:
        try:
            if call["kind"] == "set":
                self.driver.set(call["name"], call["value"])
            elif call["kind"] == "action":
                self.driver.action(call["name"], **call.get("args", {}))
            else:
                return hublink.result(
                    ERR_NO_SUCH, f"a module takes set and action, not {call['kind']}"
                )
        except ProtocolError as err:
            code = err.fields.get("code")
            return hublink.result(int(code) if code is not None else ERR_INTERNAL, err.reason)
        except ConfigError as err:  # an unknown name or argument for this spec
            return hublink.result(ERR_BAD_PARAMETER, str(err))
        except DeviceError as err:  # a timeout or a lost serial link
            return hublink.result(ERR_INTERNAL, err.reason)
        return hublink.result(0)


def _json(value: Any) -> Any:
    """A report value as JSON carries it (codec words are plain ``str`` subclasses)."""
    return str(value) if isinstance(value, str) else value
