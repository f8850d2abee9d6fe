"""A module driver that can also certify the link: audit signals and probes.

``AcceptanceModuleDriver`` is the bench's Wi-Fi module plus what a
certification lab adds to it: the ``miot.*`` signals derived from the
transcript (hil/miot/audit.py) and four probes, stimuli that send what a
well-behaved module never would, to see how the MCU answers:

``miot.send-unknown-method``  ``down <unknown method>``: expect ``error`` with a
                              code in -9999…-5000 (``miot.unknown-method-code``)
``miot.write-read-only``      ``set_properties`` on the spec's first property
                              without write access: expect -4002
                              (``miot.read-only-write-code``)
``miot.write-out-of-range``   ``set_properties`` with a value outside the first
                              writable ranged or enumerated property's values (a
                              bool property gets the number 2): expect -4005
                              (``miot.out-of-range-code``)
``miot.request-mcu-version``  ``MIIO_mcu_version_req``: the MCU must send
                              ``mcu_version`` again (``miot.mcu-version-valid``)

A probe waits for its answer like any downlink (at most the 4 s RPC
timeout; no answer is a ``DeviceTimeout``) and publishes the answer's code
at the answer's capture time, so the plan's next ``expect`` judges it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hil.bench.definition import DeviceDefinition
from hil.bench.driver import Sample
from hil.errors import ConfigError
from hil.miot.audit import (
    AUDIT_SIGNALS,
    OUT_OF_RANGE_CODE,
    PROBE_MCU_VERSION,
    PROBE_OUT_OF_RANGE,
    PROBE_READ_ONLY,
    PROBE_UNKNOWN_METHOD,
    PROBES,
    READ_ONLY_CODE,
    UNKNOWN_METHOD_CODE,
    LinkAudit,
)
from hil.miot.codec import Line, Value, is_int
from hil.miot.module import RPC_TIMEOUT_S, MiotModuleDriver
from hil.miot.spec import MiotSpec, PropertySpec, ServiceSpec
from hil.transports.serial import SerialTransport

UNKNOWN_METHOD = "hil_no_such_method"


class AcceptanceModuleDriver(MiotModuleDriver):
    """The module driver with the link audit and the acceptance probes (see the module doc)."""

    def __init__(
        self,
        name: str,
        transport: SerialTransport,
        definition: DeviceDefinition,
        spec: MiotSpec,
        *,
        rpc_timeout: float = RPC_TIMEOUT_S,
    ) -> None:
        super().__init__(name, transport, definition, spec, rpc_timeout=rpc_timeout)
        self.audit = LinkAudit(transport.capture, rpc_timeout=rpc_timeout)

    # ----- the Driver protocol, for the miot.* names

    def samples(self, signal: str, since: float) -> list[Sample]:
        if signal in AUDIT_SIGNALS:
            self.definition.signal(signal, self.name)
            return self.audit.samples(signal, since)
        return super().samples(signal, since)

    def read(self, signal: str) -> Sample:
        if signal in AUDIT_SIGNALS:
            self.definition.signal(signal, self.name)
            return self.audit.latest(signal, self.name)
        return super().read(signal)

    def stimulate(self, stimulus: str, values: Mapping[str, Any]) -> float:
        if stimulus in PROBES:
            if values:
                raise ConfigError(f"probe {stimulus!r} takes no arguments, got {sorted(values)}")
            return self.probe(stimulus)
        return super().stimulate(stimulus, values)

    def close(self) -> None:
        self.audit.close()
        super().close()

    # ----- probes

    def probe(self, name: str) -> float:
        """Send probe ``name``; returns the capture time of its downlink."""
        if name == PROBE_MCU_VERSION:
            request = self.request("MIIO_mcu_version_req", expect="mcu_version")
        elif name == PROBE_UNKNOWN_METHOD:
            request = self.request(UNKNOWN_METHOD)
            self._publish_code(UNKNOWN_METHOD_CODE, request.reply, request.t_reply)
        elif name == PROBE_READ_ONLY:
            service, prop = self._read_only()
            request = self.request("set_properties", service.siid, prop.piid, prop.default())
            self._publish_code(READ_ONLY_CODE, request.reply, request.t_reply)
        elif name == PROBE_OUT_OF_RANGE:
            service, prop, value = self._out_of_range()
            request = self.request("set_properties", service.siid, prop.piid, value)
            self._publish_code(OUT_OF_RANGE_CODE, request.reply, request.t_reply)
        else:
            raise ConfigError(f"{self.name} has no probe {name!r}; probes are {sorted(PROBES)}")
        assert request.t_sent is not None
        return request.t_sent

    def _publish_code(self, signal: str, reply: Line | None, t: float | None) -> None:
        assert reply is not None and t is not None  # request() returns answered requests only
        # result <siid> <piid> <code> …, or error "<message>" <code>
        if reply.command == "result":
            code = reply.args[2] if len(reply.args) >= 3 else None
        else:
            code = next((a for a in reversed(reply.args) if is_int(a)), None)
        if code is None or not is_int(code):
            # no code at all: record what can never pass for one
            self.audit.publish(signal, Sample(t, 0))
            return
        self.audit.publish(signal, Sample(t, int(code)))

    def _read_only(self) -> tuple[ServiceSpec, PropertySpec]:
        for service, prop in self.spec.iter_properties():
            if not prop.writable:
                return service, prop
        raise ConfigError(f"{self.spec.model} has no read-only property to probe")

    def _out_of_range(self) -> tuple[ServiceSpec, PropertySpec, Value]:
        writable = [(s, p) for s, p in self.spec.iter_properties() if p.writable]
        for service, prop in writable:
            if prop.enum:
                return service, prop, max(prop.enum.values()) + 1
            if prop.range is not None:
                hi, step = prop.range[1], prop.range[2]
                beyond = hi + (step if step > 0 else 1)
                return service, prop, int(beyond) if prop.type == "int" else float(beyond)
        for service, prop in writable:
            if prop.type == "bool":
                return service, prop, 2  # a number where true/false belongs
        raise ConfigError(f"{self.spec.model} has no writable number or bool property to probe")
