"""The bench side of an actuator: imposes a real device's physical inputs over VISA.

A bench file entry may name one for a real device::

    smart_plug:
      type: smart_plug
      serial: {port: /dev/pts/4}
      actuator: {resource: "TCPIP::127.0.0.1::40123::SOCKET"}

and the bench then sets ``smart_plug.load_current`` through it, as it would
through the emulator of an emulated device. ``hil emulate`` serves one (see
hil/emulation/actuator.py for the protocol); every exchange is captured like
any SCPI exchange.
"""

from __future__ import annotations

from hil.errors import DeviceError, ProtocolError
from hil.lifecycle import Resource
from hil.transports.visa import VisaTransport


class Actuator(Resource):
    """``set_input(name, value)`` on the device ``device`` through ``resource``."""

    def __init__(self, device: str, *, resource: str, backend: str = "@py", timeout_s: float = 5.0):
        super().__init__()
        self.device = device
        self.name = f"{device}-actuator"
        self.visa = VisaTransport(
            self.name, resource=resource, backend=backend, timeout_s=timeout_s
        )

    def _open_impl(self) -> None:
        self.visa.open()
        ident = self.visa.query("*IDN?")
        parts = ident.split(",")
        if len(parts) < 3 or parts[:2] != ["hil", "actuator"]:
            self.visa.close()
            raise ProtocolError(
                f"{self.visa.resource} is not a hil actuator: *IDN? answered {ident!r}",
                device=self.device,
            )
        self.inputs = tuple(parts[3:])

    def set_input(self, name: str, value: float) -> None:
        reply = self.visa.query(f"SET {name} {value!r}")
        if reply != "OK":
            raise DeviceError(
                f"actuator {self.visa.resource} refused {name} = {value:g}: "
                + reply.removeprefix("ERR "),
                device=self.device,
            )

    def _close_impl(self) -> None:
        self.visa.close()
