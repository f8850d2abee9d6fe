"""The socketcand-protocol gateway against python-can's own ``socketcand`` client.

The client (``can/interfaces/socketcand``) is the ground truth: every test
that can goes through ``can.Bus(interface="socketcand", …)``; the raw-socket
tests pin the wire text the client parses.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator

import can
import pytest

from hil.errors import TransportOpenError
from hil.transports.can import HANDSHAKE_TRIES, CanTransport, _bus_error
from hil.transports.socketcand_gateway import (
    RAW_GRACE_S,
    GatewayProtocolError,
    SocketcandGateway,
    format_frame,
    parse_send,
)


def _wait(predicate: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def channel() -> str:
    return f"gw-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def gateway(channel: str) -> Iterator[SocketcandGateway]:
    with SocketcandGateway(channels={"bus0": channel}, max_clients=3) as gw:
        yield gw


def _client(gw: SocketcandGateway, name: str = "bus0") -> can.BusABC:
    return can.Bus(interface="socketcand", host="127.0.0.1", port=gw.port, channel=name)


def _recv(bus: can.BusABC, arbitration_id: int, timeout: float = 2.0) -> can.Message:
    """The first frame with ``arbitration_id`` (a client may see others first)."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        msg = bus.recv(timeout=left)
        if msg is not None and msg.arbitration_id == arbitration_id:
            return msg
    raise AssertionError(f"no frame 0x{arbitration_id:X} within {timeout} s")


class _Raw:
    """A hand-driven protocol client, to see the exact text the gateway sends."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=2.0)
        self.buf = ""

    def send(self, text: str) -> None:
        self.sock.sendall(text.encode("ascii"))

    def read(self) -> str:
        """One ``< … >`` message."""
        while ">" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise AssertionError(f"connection closed; had {self.buf!r}")
            self.buf += chunk.decode("ascii")
        end = self.buf.index(">") + 1
        message, self.buf = self.buf[:end], self.buf[end:]
        return message.strip()

    def close(self) -> None:
        self.sock.close()


def test_two_clients_relay_both_ways_with_timestamps(gateway: SocketcandGateway) -> None:
    a, b = _client(gateway), _client(gateway)
    try:
        t0 = time.time()
        a.send(can.Message(arbitration_id=0x123, data=[1, 2, 0xFF], is_extended_id=False))
        got = _recv(b, 0x123)
        t1 = time.time()
        assert (bytes(got.data), got.is_extended_id) == (b"\x01\x02\xff", False)
        assert t0 <= got.timestamp <= t1  # the gateway's bus timestamp, same clock

        b.send(can.Message(arbitration_id=0x1ABCDEF, data=b"", is_extended_id=True))
        back = _recv(a, 0x1ABCDEF)
        assert (back.is_extended_id, back.dlc, back.timestamp >= t0) == (True, 0, True)
        assert a.recv(timeout=0.2) is None  # like a raw CAN socket: no echo of its own frames
    finally:
        a.shutdown()
        b.shutdown()


def test_a_client_and_the_gateway_channel_are_one_bus(
    gateway: SocketcandGateway, channel: str
) -> None:
    client = _client(gateway)
    local = can.Bus(interface="virtual", channel=channel)
    try:
        local.send(can.Message(arbitration_id=0x7FF, data=bytes(range(8)), is_extended_id=False))
        assert bytes(_recv(client, 0x7FF).data) == bytes(range(8))
        client.send(can.Message(arbitration_id=0x010, data=[0x0F], is_extended_id=False))
        msg = local.recv(timeout=2.0)
        assert msg is not None and (msg.arbitration_id, bytes(msg.data)) == (0x010, b"\x0f")
    finally:
        client.shutdown()
        local.shutdown()


def test_wire_text_is_what_the_client_parses(gateway: SocketcandGateway, channel: str) -> None:
    raw = _Raw(gateway.port)
    local = can.Bus(interface="virtual", channel=channel)
    try:
        assert raw.read() == "< hi >"
        raw.send("< rawmode >")
        assert raw.read().startswith("< error rawmode before open")
        raw.send("< open nope >")
        refused = raw.read()
        assert refused.startswith("< error ") and "no channel 'nope'" in refused
        assert "['bus0']" in refused
        raw.send("< open >")
        assert raw.read().startswith("< error expected 'open CHANNEL'")
        raw.sock.sendall("< open \u00e9 bus >".encode())  # the answer stays one ASCII message
        assert (
            raw.read() == "< error expected 'open CHANNEL', got a channel of '\\ufffd\\ufffd bus' >"
        )
        raw.send("< open bus0 >")
        assert raw.read() == "< ok >"
        raw.send("< echo >")
        assert raw.read() == "< echo >"
        raw.send("< rawmode >")
        assert raw.read() == "< ok >"
        local.send(can.Message(arbitration_id=0x05, data=b"", is_extended_id=False))
        local.send(can.Message(arbitration_id=0x05, data=b"\xab", is_extended_id=True))
        empty, ext = raw.read(), raw.read()
        assert empty.startswith("< frame 005 ") and empty.endswith("  >")  # no data: two spaces
        assert ext.startswith("< frame 00000005 ") and ext.endswith(" AB >")
        secs, usecs = empty.split()[3].split(".")
        assert len(usecs) == 6 and abs(int(secs) - time.time()) < 60
        raw.send("< send 1FF 2 a 0b >")  # the client writes bytes without zero padding
        msg = local.recv(timeout=2.0)
        assert msg is not None and (msg.arbitration_id, bytes(msg.data)) == (0x1FF, b"\x0a\x0b")
        raw.send("< send xyz 1 1 >< send 100 1 1 >")  # a bad line is dropped, the link stays
        msg = local.recv(timeout=2.0)
        assert msg is not None and msg.arbitration_id == 0x100
    finally:
        raw.close()
        local.shutdown()


def test_frames_wait_out_the_rawmode_grace_unless_the_client_sends(
    gateway: SocketcandGateway, channel: str
) -> None:
    """python-can reads ``< ok >`` with one recv(): nothing may follow it at once."""
    raw = _Raw(gateway.port)
    local = can.Bus(interface="virtual", channel=channel)
    try:
        raw.read()
        raw.send("< open bus0 >")
        raw.read()
        raw.send("< rawmode >")
        assert raw.read() == "< ok >"
        t_ok = time.monotonic()
        local.send(can.Message(arbitration_id=0x321, data=b"\x01", is_extended_id=False))
        assert raw.read().startswith("< frame 321 ")
        assert time.monotonic() - t_ok >= RAW_GRACE_S * 0.9
    finally:
        raw.close()
        local.shutdown()


def test_client_errors_reach_the_python_can_client(gateway: SocketcandGateway) -> None:
    with pytest.raises(can.CanError, match="no channel 'other' on this gateway"):
        _client(gateway, "other")


def test_bounded_clients_and_clean_departures(gateway: SocketcandGateway) -> None:
    clients = [_client(gateway) for _ in range(3)]
    try:
        raw = _Raw(gateway.port)
        assert raw.read() == "< error too many clients >"
        raw.close()
        clients.pop().shutdown()
        assert _wait(lambda: gateway.clients == 2)
    finally:
        for c in clients:
            c.shutdown()
    assert _wait(lambda: gateway.clients == 0)


def test_closing_with_clients_connected_ends_every_session(channel: str) -> None:
    gw = SocketcandGateway(channels={"bus0": channel}).open()
    raw = _Raw(gw.port)
    try:
        assert raw.read() == "< hi >"
        raw.send("< open bus0 >")
        assert raw.read() == "< ok >"
        gw.close()
        assert gw.clients == 0
        assert raw.sock.recv(64) == b""  # the gateway hung up
    finally:
        raw.close()


def test_a_bench_transport_sees_the_gateway_go(channel: str) -> None:
    """python-can's client takes end-of-file for silence; the transport does not."""
    gw = SocketcandGateway(channels={"bus0": channel}).open()
    opts = {"host": "127.0.0.1", "port": gw.port}
    try:
        with CanTransport("ev", interface="socketcand", channel="bus0", bus_kwargs=opts) as t:
            gw.close()
            assert _wait(lambda: t.lost is not None)
            assert t.lost is not None and "closed the connection" in str(t.lost)
    finally:
        gw.close()


def test_no_server_is_a_clear_open_error(unused_tcp_port: int) -> None:
    opts = {"host": "127.0.0.1", "port": unused_tcp_port}
    t0 = time.monotonic()
    with pytest.raises(
        TransportOpenError, match=f"no socketcand server at 127.0.0.1:{unused_tcp_port}"
    ):
        CanTransport("ev", interface="socketcand", channel="bus0", bus_kwargs=opts).open()
    assert time.monotonic() - t0 < 3.0  # not python-can's 10 s of retries


@pytest.mark.parametrize(
    ("body", "ident", "ext", "data"),
    [
        ("send 123 3 1 2 ff", 0x123, False, b"\x01\x02\xff"),
        ("send 00000123 0", 0x123, True, b""),
        ("send 1FFFFFFF 1 0", 0x1FFFFFFF, True, b"\x00"),
    ],
)
def test_parse_send(body: str, ident: int, ext: bool, data: bytes) -> None:
    msg = parse_send(body)
    assert (msg.arbitration_id, msg.is_extended_id, bytes(msg.data)) == (ident, ext, data)


@pytest.mark.parametrize(
    "body", ["send 123", "send 123 2 1", "send 123 1 zz", "send 20000000 0", "send 800 1 1 2"]
)
def test_parse_send_rejects(body: str) -> None:
    with pytest.raises(GatewayProtocolError):
        parse_send(body)


def test_format_frame_rounds_timestamps_into_six_digits() -> None:
    msg = can.Message(timestamp=12.9999996, arbitration_id=0x1, data=b"\x00", is_extended_id=False)
    assert format_frame(msg) == "< frame 001 13.000000 00 >"


class _EagerDaemon:
    """A socketcand server that, like the daemon on a busy bus, sends a frame in the same
    segment as its ``< ok >`` to ``< rawmode >`` on the first ``races`` handshakes and
    relays nothing: the client's handshake race, made certain."""

    def __init__(self, races: int) -> None:
        self.races = races
        self.handshakes = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, name="eager-daemon", daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # closed
            self.conns.append(conn)
            conn.settimeout(2.0)
            try:
                conn.sendall(b"< hi >")
                if not conn.recv(256):  # hil's probe connection: hangs up at once
                    continue
                conn.sendall(b"< ok >")
                conn.recv(256)  # < rawmode >
                self.handshakes += 1
                raced = self.handshakes <= self.races
                conn.sendall(b"< ok >< frame 123 1.000000 01 >" if raced else b"< ok >")
            except OSError:
                continue

    def close(self) -> None:
        self.listener.close()
        self.thread.join(timeout=2.0)
        for conn in self.conns:
            conn.close()


@pytest.mark.parametrize("races", [1, HANDSHAKE_TRIES])
def test_a_handshake_that_raced_a_frame_is_retried(races: int) -> None:
    daemon = _EagerDaemon(races)
    opts = {"host": "127.0.0.1", "port": daemon.port}
    transport = CanTransport("ev", interface="socketcand", channel="can0", bus_kwargs=opts)
    try:
        if races < HANDSHAKE_TRIES:
            transport.open()
            assert daemon.handshakes == races + 1
        else:
            with pytest.raises(TransportOpenError, match="Expected '< ok >' got: '< ok >< frame"):
                transport.open()
            assert daemon.handshakes == HANDSHAKE_TRIES
    finally:
        transport.close()
        daemon.close()


def _wrapped(cause: OSError) -> can.CanError:
    """A receive error as python-can's socketcand client raises it: its text carries a
    traceback, its cause is the socket's error."""
    try:
        try:
            raise cause
        except OSError as exc:
            raise can.CanError(f"Failed to receive: {exc}  Traceback (most recent…)") from exc
    except can.CanError as err:
        return err


def test_a_reset_connection_is_the_gateway_hanging_up_in_one_line() -> None:
    reset = _wrapped(ConnectionResetError(104, "Connection reset by peer"))
    why = _bus_error("socketcand", reset)
    assert (
        why == "the socketcand server closed the connection ([Errno 104] Connection reset by peer)"
    )
    # other failures keep their own words, without the traceback
    other = _bus_error("socketcand", _wrapped(OSError(9, "Bad file descriptor")))
    assert other == "CAN bus error: [Errno 9] Bad file descriptor"
    assert _bus_error("virtual", can.CanError("line one\nline two")) == "CAN bus error: line one"
