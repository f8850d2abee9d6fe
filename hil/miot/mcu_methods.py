"""What an emulated MIoT MCU does with a downlink: the protocol's methods.

``get_properties``, ``set_properties``, ``action`` and the network-state and
version requests, with the access, type and range checks and result codes the
protocol asks of any appliance. ``MiotMcuEmulator`` (hil/miot/mcu.py) mixes
this in; it owns the state, the pty and the loop these methods use.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from hil.miot.codec import Bare, Line, LineError, Value, is_int
from hil.miot.spec import MiotSpec, PropertySpec

Key = tuple[int, int]  # (siid, piid)

NET_STATES = frozenset({"offline", "local", "cloud", "updating", "uap", "unprov"})
# codes for ``error`` lines; the protocol reserves -9999…-5000 for them
ERR_UNKNOWN_COMMAND = -5000
ERR_UNKNOWN_METHOD = -5001
ERR_BAD_ARGUMENTS = -5002
ERR_BAD_LINE = -5003


class ActionRefused(Exception):
    """Raised by ``_on_action`` to answer an action with a non-zero result code."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class DownlinkMethods:
    """Executes the module's downlinks against the MCU's properties and hooks.

    The attributes and methods declared here without a body are the MCU's
    (``MiotMcuEmulator``): its spec, values, lock, sending and hooks.
    """

    spec: MiotSpec
    unknown_method_code: int
    _lock: threading.RLock
    _values: dict[Key, Value]
    _net: str

    def _send(self, command: str, *args: Value) -> None:
        raise NotImplementedError

    def _error(self, message: str, code: int) -> None:
        raise NotImplementedError

    def _store(self, key: Key, prop: PropertySpec, value: Value) -> Value:
        raise NotImplementedError

    def _name_of(self, siid: int, piid: int) -> str:
        raise NotImplementedError

    def _property_written(self, name: str, old: Value, new: Value) -> None:
        raise NotImplementedError

    def _on_action(self, name: str, args: Mapping[str, Value]) -> Mapping[str, Value]:
        raise NotImplementedError

    def _downlink(self, line: Line) -> None:
        if not line.args or not isinstance(line.args[0], str):
            self._error("down without a method", ERR_BAD_ARGUMENTS)
            return
        method, args = str(line.args[0]), line.args[1:]
        if method == "none":
            return
        if method == "MIIO_mcu_version_req":
            self._send("mcu_version", Bare(self.spec.mcu_version))
        elif method == "MIIO_net_change":
            if len(args) == 1 and str(args[0]) in NET_STATES:
                with self._lock:
                    self._net = str(args[0])
            else:
                self._error(f"bad net state {args!r}", ERR_BAD_ARGUMENTS)
        elif method == "get_properties":
            self._get_properties(args)
        elif method == "set_properties":
            self._set_properties(args)
        elif method == "action":
            self._action(args)
        else:
            self._error(f"unknown method {method}", self.unknown_method_code)

    def _reply(self, words: list[Value]) -> None:
        try:
            self._send("result", *words)
        except LineError as err:
            self._error(f"result does not fit one line: {err}", ERR_BAD_ARGUMENTS)

    def _get_properties(self, args: tuple[Value, ...]) -> None:
        if not args or len(args) % 2 or not all(is_int(a) for a in args):
            self._error("get_properties takes siid piid pairs", ERR_BAD_ARGUMENTS)
            return
        words: list[Value] = []
        for siid, piid in zip(args[::2], args[1::2], strict=True):
            assert isinstance(siid, int)
            assert isinstance(piid, int)
            prop = self.spec.prop(siid, piid)
            if prop is None:
                words += [siid, piid, -4003]
            elif not prop.readable:
                words += [siid, piid, -4001]
            else:
                with self._lock:
                    words += [siid, piid, 0, self._values[(siid, piid)]]
        self._reply(words)

    def _set_properties(self, args: tuple[Value, ...]) -> None:
        if not args or len(args) % 3 or not all(is_int(a) for a in (*args[::3], *args[1::3])):
            self._error("set_properties takes siid piid value triples", ERR_BAD_ARGUMENTS)
            return
        words: list[Value] = []
        written: list[tuple[str, Value, Value]] = []
        for siid, piid, value in zip(args[::3], args[1::3], args[2::3], strict=True):
            assert isinstance(siid, int)
            assert isinstance(piid, int)
            prop = self.spec.prop(siid, piid)
            if prop is None:
                code = -4003
            elif not prop.writable:
                code = -4002
            elif prop.check(value) is not None:
                code = -4005
            else:
                code = 0
                new = prop.normalize(value)
                old = self._store((siid, piid), prop, new)
                written.append((self._name_of(siid, piid), old, new))
            words += [siid, piid, code]
        self._reply(words)
        # hooks run after the result so their reports follow it, as on a real MCU
        for name, old, new in written:
            self._property_written(name, old, new)

    def _action(self, args: tuple[Value, ...]) -> None:
        if len(args) < 2 or not is_int(args[0]) or not is_int(args[1]):
            self._error("action takes siid aiid [piid value]…", ERR_BAD_ARGUMENTS)
            return
        siid, aiid = args[0], args[1]
        assert isinstance(siid, int)
        assert isinstance(aiid, int)
        service = self.spec.service(siid)
        action = next((a for a in service.actions if a.aiid == aiid), None) if service else None
        if service is None or action is None:
            self._reply([siid, aiid, -4003])
            return
        params = args[2:]
        given: dict[str, Value] = {}
        ok = len(params) % 2 == 0 and all(is_int(p) for p in params[::2])
        if ok:
            piids = [p for p in params[::2] if isinstance(p, int)]
            ok = sorted(piids) == sorted(action.in_)
            for piid, value in zip(params[::2], params[1::2], strict=True):
                prop = service.prop(int(piid)) if is_int(piid) else None
                if prop is None or prop.check(value) is not None:
                    ok = False
                    break
                given[prop.name] = prop.normalize(value)
        if not ok:
            self._reply([siid, aiid, -4006])
            return
        try:
            out = self._on_action(f"{service.name}.{action.name}", given)
        except ActionRefused as refused:
            self._reply([siid, aiid, refused.code])
            return
        words: list[Value] = [siid, aiid, 0]
        for piid in action.out:
            prop = service.prop(piid)
            if prop is not None and prop.name in out:
                words += [piid, prop.normalize(out[prop.name])]
        self._reply(words)
