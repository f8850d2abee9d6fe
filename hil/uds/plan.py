"""UDS as plans see it: ``uds_*`` action stimuli and ``uds.*`` signals.

Signals are *observed* from the client's recorded exchanges, each sample at
the capture time of the response that showed it:

* ``uds.session`` — the session a positive 0x10 echoed, DEFAULT after a
  positive 0x11, or the value of DID F186 (active session) when read.
* ``uds.last_nrc`` — 0 for each positive response, else its NRC.
* ``uds.dtc_count`` — the number of DTCs a positive 0x19 02 listed.
* ``uds.dtc.<code>`` (``uds.dtc.P0AA600``: SAE code and failure type) — that
  DTC's status byte in a positive 0x19 02 response, 0 when it was not listed.
  A device type declares the codes it knows (``dtc_signals``).

A negative response to an action is an observation, not an error (E10
expects 0x35, 0x35, 0x36); no response at all raises ``DeviceTimeout``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from hil.bench.definition import SignalInfo, StimulusInfo
from hil.bench.driver import Sample
from hil.errors import ConfigError, DeviceTimeout, ProtocolError, did_you_mean
from hil.uds import protocol as p
from hil.uds.client import Exchange, UdsClient

COMPUTED = "computed"

_session = SignalInfo("uds.session", "enum", choices=dict(p.SESSIONS), description="active session")
_level = SignalInfo("level", minimum=1, maximum=0x7D, description="odd security level (1)")

UDS_SIGNALS: Mapping[str, SignalInfo] = {
    "uds.session": _session,
    "uds.last_nrc": SignalInfo(
        "uds.last_nrc", minimum=0, maximum=255, description="NRC of the last response, 0 = positive"
    ),
    "uds.dtc_count": SignalInfo(
        "uds.dtc_count", minimum=0, description="DTCs listed by the last 0x19 02 response"
    ),
}


def _action(name: str, description: str, **fields: SignalInfo) -> StimulusInfo:
    return StimulusInfo(name, "action", fields=fields, description=description)


UDS_STIMULI: Mapping[str, StimulusInfo] = {
    s.name: s
    for s in (
        _action("uds_session", "0x10 session control", session=_session),
        _action(
            "uds_read_did",
            "0x22 read one DID",
            did=SignalInfo("did", minimum=0, maximum=0xFFFF, description="e.g. 0xF189"),
        ),
        _action("uds_request_seed", "0x27 request seed", level=_level),
        _action(
            "uds_security_key",
            "0x27 send key",
            level=_level,
            key=SignalInfo(
                "key",
                "string",
                description=f"hex bytes, or {COMPUTED!r}: the right key for the last seed",
            ),
        ),
        _action("uds_clear_dtcs", "0x14 clear all DTCs"),
        _action(
            "uds_read_dtcs",
            "0x19 02 read DTCs by status mask",
            mask=SignalInfo("mask", minimum=0, maximum=255, description="status mask (0xFF)"),
        ),
        _action("uds_tester_present", "0x3E tester present"),
        _action(
            "uds_reset",
            "0x11 ECU reset",
            kind=SignalInfo("kind", minimum=1, maximum=3, description="1 hard, 2 key, 3 soft"),
        ),
    )
}


DTC_PREFIX = "uds.dtc."
_DTC_LETTERS = "PCBU"


def dtc_name(code: int) -> str:
    """0x0AA600 → ``"P0AA600"`` (SAE J2012 letter, 4 digits, failure type)."""
    letter = _DTC_LETTERS[(code >> 22) & 0x3]
    return f"{letter}{(code >> 8) & 0x3FFF:04X}{code & 0xFF:02X}"


def dtc_code(name: str) -> int | None:
    """``"P0AA600"`` → 0x0AA600; ``None`` if ``name`` is not such a code."""
    if len(name) != 7 or name[0] not in _DTC_LETTERS:
        return None
    try:
        digits = int(name[1:5], 16)
        failure = int(name[5:], 16)
    except ValueError:
        return None
    if digits > 0x3FFF:
        return None
    return (_DTC_LETTERS.index(name[0]) << 22) | (digits << 8) | failure


def dtc_signals(
    codes: Iterable[int], descriptions: Mapping[int, str] | None = None
) -> dict[str, SignalInfo]:
    """``uds.dtc.<code>`` signals for the codes a device knows."""
    out = {}
    for code in codes:
        name = DTC_PREFIX + dtc_name(code)
        what = (descriptions or {}).get(code, "")
        out[name] = SignalInfo(
            name,
            minimum=0,
            maximum=255,
            description=f"status byte of DTC 0x{code:06X} in the last 0x19 02 response "
            f"(0 = not listed){': ' + what if what else ''}",
        )
    return out


def is_uds(name: str) -> bool:
    return name.startswith("uds.") or name.startswith("uds_")


def check_signal(device: str, signal: str) -> None:
    if signal.startswith(DTC_PREFIX) and dtc_code(signal[len(DTC_PREFIX) :]) is not None:
        return
    if signal not in UDS_SIGNALS:
        raise ConfigError(
            f"{device}: no signal {signal!r}; " + did_you_mean(signal, UDS_SIGNALS), device=device
        )


def observe(ex: Exchange, signal: str) -> Any:
    """What ``ex`` shows of ``signal``, or ``None``."""
    if ex.nrc is None:
        return None  # suppressed or no response: nothing seen
    if signal == "uds.last_nrc":
        return ex.nrc
    resp = ex.response_bytes()
    if ex.nrc != 0 or len(resp) < 2:
        return None
    if signal == "uds.session":
        if resp[0] == 0x50:
            return resp[1]
        if resp[0] == 0x51:
            return p.DEFAULT
        if resp[:3] == b"\x62\xf1\x86" and len(resp) >= 4:
            return resp[3]
        return None
    if resp[:2] != b"\x59\x02":
        return None
    records = [resp[i : i + 4] for i in range(3, len(resp) - 3, 4)]
    if signal == "uds.dtc_count":
        return len(records)
    code = dtc_code(signal[len(DTC_PREFIX) :]) if signal.startswith(DTC_PREFIX) else None
    if code is None:
        return None
    listed = {int.from_bytes(r[:3], "big"): r[3] for r in records}
    return listed.get(code, 0)


def samples(client: UdsClient | None, signal: str, since: float) -> list[Sample]:
    """Observations with ``t >= since``, after the last one before."""
    seen = [
        Sample(ex.t, v)
        for ex in (client.history() if client else [])
        if (v := observe(ex, signal)) is not None
    ]
    seen.sort(key=lambda s: s.t)
    before = [s for s in seen if s.t < since]
    return before[-1:] + [s for s in seen if s.t >= since]


def read(client: UdsClient, device: str, signal: str) -> Sample:
    """Active reads: F186 for the session, 0x19 02 FF for the DTC count."""
    check_signal(device, signal)
    if signal == "uds.session":
        client.read_did(p.DID_ACTIVE_SESSION)
    elif signal == "uds.dtc_count" or signal.startswith(DTC_PREFIX):
        client.read_dtcs(0xFF)
    found = samples(client, signal, float("inf"))
    if not found:
        raise DeviceTimeout(f"{signal}: no UDS response seen yet", device=device, signal=signal)
    return found[-1]


def _key(client: UdsClient, device: str, level: int, key: Any) -> bytes:
    if key == COMPUTED:
        seed = client.last_seed.get(level)
        if not seed:
            raise ConfigError(f"{device}: uds_security_key 'computed' needs a seed first")
        return client.key_fn(seed, level)
    if isinstance(key, int):
        return key.to_bytes(p.KEY_LEN, "big")
    try:
        return bytes.fromhex(str(key).removeprefix("0x"))
    except ValueError as err:
        raise ConfigError(
            f"{device}: key {key!r} is not hex bytes (or {COMPUTED!r})", device=device
        ) from err


def stimulate(client: UdsClient, device: str, stimulus: str, values: Mapping[str, Any]) -> float:
    """Run one ``uds_*`` action; returns the request's capture time."""
    info = UDS_STIMULI.get(stimulus)
    if info is None:
        raise ConfigError(
            f"{device}: no stimulus {stimulus!r}; " + did_you_mean(stimulus, UDS_STIMULI),
            device=device,
        )
    unknown = [k for k in values if k not in info.fields]
    if unknown:
        raise ConfigError(
            f"{device}: {stimulus} has no field {unknown[0]!r}; "
            + did_you_mean(unknown[0], info.fields),
            device=device,
        )
    missing = [k for k in ("session", "did", "key") if k in info.fields and k not in values]
    if missing:
        raise ConfigError(f"{device}: {stimulus} needs {missing[0]!r}", device=device)
    level = int(values.get("level", 1))
    count = len(client.history())
    try:
        if stimulus == "uds_session":
            client.session(int(values["session"]))
        elif stimulus == "uds_read_did":
            client.read_did(int(values["did"]))
        elif stimulus == "uds_request_seed":
            client.request_seed(level)
        elif stimulus == "uds_security_key":
            client.send_key(level, _key(client, device, level, values["key"]))
        elif stimulus == "uds_clear_dtcs":
            client.clear_dtcs()
        elif stimulus == "uds_read_dtcs":
            client.read_dtcs(int(values.get("mask", 0xFF)))
        elif stimulus == "uds_tester_present":
            client.tester_present()
        else:
            client.reset(int(values.get("kind", 1)))
    except ProtocolError:
        pass  # the NRC is recorded: plans judge it through uds.last_nrc
    new = client.history()[count:]
    return new[0].t_request if new else time.time()
