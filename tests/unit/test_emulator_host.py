"""EmulatorHost (what ``hil emulate`` runs) and actuators, in one process: fast checks
of the bench entries it publishes; tests/integration/test_emulate_process.py does the
same across processes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from hil.bench.bench import Bench
from hil.bench.loader import load_bench
from hil.emulation.actuator import ActuatorServer
from hil.errors import BenchError, DeviceError, ProtocolError
from hil.standalone import EmulatorHost
from hil.transports.actuator import Actuator
from hil.transports.visa import VisaTransport

SOURCE: dict[str, Any] = {
    "spec": 1,
    "id": "source",
    "time_scale": 0.1,
    "devices": {
        "ev": {"type": "ev", "emulated": True, "can": {"interface": "virtual", "channel": "c"}},
        "smart_plug": {"type": "smart_plug", "emulated": True, "serial": {"port": "auto"}},
    },
}


def _write(path: Path, bench: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(bench), encoding="utf-8")
    return path


@pytest.fixture
def source(tmp_path: Path) -> Path:
    # a unique channel: the host serves it in this process, beside other tests' benches
    bench = yaml.safe_load(yaml.safe_dump(SOURCE))
    bench["devices"]["ev"]["can"]["channel"] = f"ev-{tmp_path.name}"
    return _write(tmp_path / "source.yaml", bench)


def test_published_entries_open_as_a_real_bench(source: Path, tmp_path: Path) -> None:
    with EmulatorHost(load_bench(source), ["ev", "smart_plug"], port=0) as host:
        entries = host.entries()
        assert entries["ev"]["can"]["interface"] == "socketcand"
        assert host.gateway is not None and host.gateway.clients == 0
        real = _write(tmp_path / "real.yaml", {"spec": 1, "id": "real", "devices": entries})
        loaded = load_bench(real)
        assert not any(d.emulated for d in loaded.config.devices.values())
        with Bench(loaded) as bench:
            assert bench.identities()["ev"]["model"] == "EV VCU"
            assert host.gateway.clients == 1
            # a physical input of a real device goes through its actuator
            bench.stimulate("smart_plug", "load_current", {"value": 4.0})
            assert host.emulators["smart_plug"].state()["load_current_a"] == 4.0  # type: ignore[attr-defined]


def test_a_device_not_in_the_bench_names_the_choices(source: Path) -> None:
    with pytest.raises(BenchError, match="no device 'eev'; did you mean 'ev'"):
        EmulatorHost(load_bench(source), ["eev"])


def test_an_actuator_on_an_emulated_device_is_a_located_error(tmp_path: Path) -> None:
    bench = yaml.safe_load(yaml.safe_dump(SOURCE))
    bench["devices"]["smart_plug"]["actuator"] = {"resource": "TCPIP::127.0.0.1::1::SOCKET"}
    path = _write(tmp_path / "b.yaml", bench)
    with pytest.raises(BenchError, match=r"b\.yaml:\d+:\d+: device 'smart_plug': an actuator"):
        load_bench(path)


def test_actuator_protocol(source: Path) -> None:
    with EmulatorHost(load_bench(source), ["smart_plug"]) as host:
        server = host.actuators["smart_plug"]
        assert isinstance(server, ActuatorServer)
        idn = server.reply("*IDN?").split(",")
        assert idn[:3] == ["hil", "actuator", "smart_plug"] and "load_current" in idn[3:]
        assert server.reply("SET load_current 2.5") == "OK"
        assert server.reply("SET load_curent 1").startswith("ERR ")
        assert "did you mean 'load_current'" in server.reply("SET load_curent 1")
        assert server.reply("SET load_current nan") == "ERR 'nan' is not finite"
        assert server.reply("SET load_current x") == "ERR 'x' is not a number"
        assert server.reply("LOAD 1").startswith("ERR expected 'SET <input> <value>'")
        with Actuator("smart_plug", resource=server.resource) as act:
            act.set_input("load_current", 1.5)
            with pytest.raises(DeviceError, match="refused load_currentt = 1.5: .*no physical"):
                act.set_input("load_currentt", 1.5)


def test_an_actuator_must_be_one(tmp_path: Path) -> None:
    """A resource that answers *IDN? as something else is not taken for an actuator."""
    with EmulatorHost(load_bench(_analyzer_bench(tmp_path)), ["meter"]) as host:
        resource = host.emulators["meter"].endpoint["resource"]
        with VisaTransport("probe", resource=resource) as probe:
            assert "hil,actuator" not in probe.query("*IDN?")
        with pytest.raises(ProtocolError, match="is not a hil actuator"):
            Actuator("meter", resource=resource).open()


def _analyzer_bench(tmp_path: Path) -> Path:
    bench = {
        "spec": 1,
        "id": "meter",
        "devices": {"meter": {"type": "power_analyzer", "emulated": True, "visa": {}}},
    }
    return _write(tmp_path / "meter.yaml", bench)
