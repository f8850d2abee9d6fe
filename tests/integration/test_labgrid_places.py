"""Benches reserved across hosts through a real labgrid coordinator, and pyserial kept upstream.

The coordinator is ``labgrid-coordinator -l 127.0.0.1:PORT`` (from the labgrid
venv that ``make install`` makes in ``.tools/labgrid``); places are created,
tagged and inspected with ``labgrid-client``; hil acquires them as a run's
bench file says (``place:``).
"""

from __future__ import annotations

import importlib.metadata
import os
import secrets
import select
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from hil.bench.labgrid_place import Place, PlaceBusy, PlaceError, client_path
from hil.bench.loader import load_bench
from hil.errors import BenchError, TransportOpenError
from hil.transports.serial import SerialTransport
from tests.conftest import ROOT

START_TIMEOUT_S = 30.0
RUN_TIMEOUT_S = 300.0

HOLDER_TEST = """
import json, os
from pathlib import Path
from hil.bench.labgrid_place import Place
from hil.pytest_plugin.session import hil_session

def test_place_is_held(bench, request):
    session = hil_session(request.config)
    assert session.place is not None
    seen = Place(session.place.name, coordinator=session.place.coordinator).holder()
    Path(os.environ["HOLDER_OUT"]).write_text(json.dumps({"holder": seen}))
"""


def _client(coordinator: str, *args: str, user: str = "lab") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LG_COORDINATOR": coordinator, "LG_USERNAME": user}
    return subprocess.run(
        [client_path(), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def coordinator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A labgrid coordinator on the loopback, its state in a temporary folder."""
    exe = Path(client_path()).with_name("labgrid-coordinator")
    assert exe.exists() or shutil.which(str(exe)), f"{exe}: run `make install`"
    folder = tmp_path_factory.mktemp("labgrid")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    address = f"127.0.0.1:{port}"
    log = folder / "coordinator.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(exe), "-l", address], cwd=folder, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while _client(address, "places").returncode != 0:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"no coordinator: {log.read_text()}"
            time.sleep(0.3)
        yield address
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


@pytest.fixture
def place(coordinator: str) -> str:
    name = f"hil-bench-{secrets.token_hex(3)}"
    for args in (("create",), ("set-tags", "bench=hil", "site=ci")):
        done = _client(coordinator, "-p", name, *args)
        assert done.returncode == 0, done.stderr
    return name


def _bench(folder: Path, place: str, coordinator: str, timeout_s: float = 60) -> Path:
    bench = {
        "spec": 1,
        "id": "placed",
        "place": {"name": place, "coordinator": coordinator, "timeout_s": timeout_s},
        "devices": {
            "smart_plug": {"type": "smart_plug", "emulated": True, "serial": {"port": "auto"}}
        },
    }
    path = folder / "placed.yaml"
    path.write_text(yaml.safe_dump(bench), encoding="utf-8")
    return path


def _pytest(folder: Path, bench: Path) -> subprocess.CompletedProcess[str]:
    (folder / "test_place.py").write_text(HOLDER_TEST, encoding="utf-8")
    env = {**os.environ, "HOLDER_OUT": str(folder / "holder.json"), "HIL_LEASE_DIR": str(folder)}
    argv = [sys.executable, "-m", "pytest", "-p", "no:randomly", "-p", "no:cacheprovider"]
    return subprocess.run(
        [*argv, "--bench", str(bench), "test_place.py"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        check=False,
    )


def test_a_run_holds_its_benchs_place_for_the_session_and_releases_it(
    coordinator: str, place: str, tmp_path: Path
) -> None:
    run = _pytest(tmp_path, _bench(tmp_path, place, coordinator))
    assert run.returncode == 0, run.stdout + run.stderr
    held = (tmp_path / "holder.json").read_text()
    user = Place(place).user  # the run's own labgrid user (not an xdist worker)
    assert f'/{user}"' in held, held
    assert Place(place, coordinator=coordinator).holder() is None  # released at the end


def test_a_held_place_makes_a_run_wait_then_name_the_holder(
    coordinator: str, place: str, tmp_path: Path
) -> None:
    other = Place(place, coordinator=coordinator, worker="gw7")  # another labgrid user
    other.acquire(timeout_s=5)
    try:
        with pytest.raises(PlaceBusy) as busy:
            Place(place, coordinator=coordinator).acquire(timeout_s=1)
        assert busy.value.holder == other.identity
        run = _pytest(tmp_path, _bench(tmp_path, place, coordinator, timeout_s=1))
    finally:
        other.release()
    assert run.returncode == 1, run.stdout + run.stderr
    said = run.stdout
    assert f"labgrid place {place!r} stayed acquired for 1 s: held by {other.identity}" in said
    assert Place(place, coordinator=coordinator).holder() is None


def test_a_place_the_coordinator_does_not_know_is_an_error_not_a_wait(
    coordinator: str,
) -> None:
    started = time.monotonic()
    with pytest.raises(PlaceError, match="no-such-place"):
        Place("no-such-place", coordinator=coordinator).acquire(timeout_s=60)
    assert time.monotonic() - started < 60  # it did not wait out the timeout


def test_hil_keeps_upstream_pyserial_and_labgrid_keeps_its_fork() -> None:
    """labgrid's fork replaces the ``serial`` module; hil's venv must not have it."""
    owners = importlib.metadata.packages_distributions().get("serial", [])
    assert owners == ["pyserial"], owners
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        importlib.metadata.distribution("pyserial-labgrid")
    labgrid_python = Path(client_path()).with_name("python")
    probe = "import importlib.metadata as m; print(m.packages_distributions()['serial'])"
    done = subprocess.run(
        [str(labgrid_python), "-c", probe], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert "pyserial-labgrid" in done.stdout


@pytest.fixture
def ser2net_pty(tmp_path: Path, unused_tcp_port: int) -> Iterator[tuple[int, int]]:
    """ser2net on the loopback in front of a pty: (the pty's master fd, the RFC 2217 port)."""
    ser2net = shutil.which("ser2net")
    assert ser2net, "ser2net (Debian package) is missing: `make install` installs it"
    master, slave = os.openpty()
    conf = tmp_path / "ser2net.yaml"
    conf.write_text(
        f"connection: &line\n  accepter: telnet(rfc2217),tcp,127.0.0.1,{unused_tcp_port}\n"
        f"  connector: serialdev,{os.ttyname(slave)},115200n81,local\n"
        "  options:\n    chardelay: false\n",
        encoding="utf-8",
    )
    argv = [ser2net, "-n", "-u", "-c", str(conf), "-P", str(tmp_path / "ser2net.pid")]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                socket.create_connection(("127.0.0.1", unused_tcp_port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "ser2net never listened"
                time.sleep(0.1)
        yield master, unused_tcp_port
    finally:
        proc.terminate()
        proc.wait(timeout=15)
        os.close(master)
        os.close(slave)


def _read_until(fd: int, wanted: bytes, timeout_s: float = 10.0) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout_s
    while wanted not in buf:
        left = deadline - time.monotonic()
        assert left > 0, f"never got {wanted!r}; got {buf!r}"
        ready, _, _ = select.select([fd], [], [], min(left, 0.5))
        if ready:
            buf += os.read(fd, 4096)
    return buf


def test_serial_lines_round_trip_over_rfc2217_through_ser2net(
    ser2net_pty: tuple[int, int],
) -> None:
    """hil's serial transport on upstream pyserial's rfc2217:// client, ser2net in front of
    a line: both directions, line framing and capture as on a local port."""
    master, port = ser2net_pty
    line = SerialTransport("line", url=f"rfc2217://127.0.0.1:{port}?ign_set_control")
    with line:
        line.write_line("get_down")
        assert _read_until(master, b"get_down\r").endswith(b"get_down\r")
        os.write(master, b"down none\r")
        deadline = time.monotonic() + 10.0
        while not [r for r in line.capture.records() if r.data == "down none"]:
            assert time.monotonic() < deadline, line.capture.records()
            time.sleep(0.02)
        assert [(r.direction, r.data) for r in line.capture.records()] == [
            ("tx", "get_down"),
            ("rx", "down none"),
        ]
        assert line.lost is None


def test_without_ign_set_control_ser2net_leaves_pyserial_waiting_and_the_error_says_why(
    ser2net_pty: tuple[int, int],
) -> None:
    _master, port = ser2net_pty
    line = SerialTransport("line", url=f"rfc2217://127.0.0.1:{port}")
    with pytest.raises(TransportOpenError) as refused:
        line.open()
    assert "timeout while waiting for option 'control'" in str(refused.value)
    assert str(refused.value).endswith("add ?ign_set_control)")
    assert not line.is_open


def test_a_place_asked_for_by_tags_is_reserved_allocated_and_acquired(coordinator: str) -> None:
    """Two places tagged alike, one held by another user: a reservation by tags gets the free
    one; a third asker waits its bounded time and is told who holds both."""
    tag = f"pool-{secrets.token_hex(3)}"
    names = [f"hil-tagged-{tag}-{i}" for i in (1, 2)]
    for name in names:
        for args in (("create",), ("set-tags", f"bench={tag}")):
            done = _client(coordinator, "-p", name, *args)
            assert done.returncode == 0, done.stderr
    other = Place(names[0], coordinator=coordinator, worker="gw7")
    other.acquire(timeout_s=5)
    mine = Place(tags={"bench": tag}, coordinator=coordinator)
    try:
        mine.acquire(timeout_s=30)
        assert mine.name == names[1] and mine.token
        assert Place(names[1], coordinator=coordinator).holder() == mine.identity
        third = Place(tags={"bench": tag}, coordinator=coordinator, worker="gw8")
        with pytest.raises(PlaceBusy) as busy:
            third.acquire(timeout_s=2)
        said = str(busy.value)
        assert f"no labgrid place tagged bench={tag} became free within 2 s" in said
        assert (
            f"{names[0]} by {other.identity}" in said and f"{names[1]} by {mine.identity}" in said
        )
        assert third.token is None  # its reservation was cancelled
    finally:
        mine.release()
        other.release()
    assert Place(names[1], coordinator=coordinator).holder() is None
    reservations = _client(coordinator, "reservations").stdout
    assert mine.token is None and tag not in reservations


@pytest.mark.parametrize(
    ("place", "ok"),
    [
        ({"name": "b1"}, True),
        ({"tags": {"bench": "car"}}, True),
        ({}, False),
        ({"name": "b1", "tags": {"bench": "car"}}, False),
    ],
)
def test_a_bench_names_its_place_by_name_or_by_tags(
    place: dict[str, object], ok: bool, tmp_path: Path
) -> None:
    path = tmp_path / "b.yaml"
    bench = yaml.safe_load(_bench(tmp_path, "x", "127.0.0.1:1").read_text())
    path.write_text(yaml.safe_dump({**bench, "place": place}), encoding="utf-8")
    if ok:
        assert load_bench(path).config.place is not None
    else:
        with pytest.raises(BenchError, match="named by 'name' or by 'tags', one of the two"):
            load_bench(path)
