"""The power analyzer's query path without its old detours (issue 8): the capture
timestamp comes back with the exchange, and VALue? answers are parsed once per field
with parse_nr3's meaning."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.power_analyzer import DEVICE_TYPE
from devices.power_analyzer.driver import VALUE_QUERY, PowerAnalyzerDriver
from devices.power_analyzer.emulator import PowerAnalyzerEmulator
from hil.bench.registry import DriverContext
from hil.errors import ProtocolError
from hil.scpi.server import INF_CODE, NAN_CODE, format_nr3, parse_nr3
from hil.transports.visa import VisaTransport

Opened = tuple[PowerAnalyzerEmulator, VisaTransport, PowerAnalyzerDriver]


@pytest.fixture
def analyzer() -> Iterator[Opened]:
    emu = PowerAnalyzerEmulator("pa", settings={"seed": 7})
    transport = VisaTransport("pa", resource="unset", timeout_s=2.0)
    with emu:
        transport.resource = emu.endpoint["resource"]
        with transport:
            ctx = DriverContext("pa", transport, DEVICE_TYPE.definition({}), {})
            driver = DEVICE_TYPE.driver(ctx)
            assert isinstance(driver, PowerAnalyzerDriver)
            try:
                yield emu, transport, driver
            finally:
                driver.close()


def test_query_at_and_write_at_return_their_records_timestamp(analyzer: Opened) -> None:
    _, transport, _ = analyzer
    answer, t = transport.query_at("*IDN?")
    last = transport.capture.latest()
    assert last is not None
    assert (last.t, last.data.command, last.data.response) == (t, "*IDN?", answer)
    t_write = transport.write_at(":RATE 1S")
    last = transport.capture.latest()
    assert last is not None
    assert (last.t, last.data.command, last.data.response) == (t_write, ":RATE 1S", None)
    assert t < t_write


def test_a_reading_carries_the_timestamp_of_its_own_exchange(analyzer: Opened) -> None:
    _, transport, driver = analyzer
    sample = driver.read("P")
    last = transport.capture.latest()
    assert last is not None and last.data.command == VALUE_QUERY
    assert sample.t == last.t
    t = driver.integration("START")
    writes = [r for r in transport.capture.records() if r.data.command == ":INTEGrate:STARt"]
    assert [r.t for r in writes] == [t]


# what an NR3 field can be: a number as the instrument formats it, the two codes with
# either sign, the NaN spellings float() reads, and text that is no number at all
_FIELDS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(format_nr3),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.sampled_from([NAN_CODE, -NAN_CODE, INF_CODE, -INF_CODE]).map(lambda v: f"{v:.3E}"),
    st.sampled_from(["NAN", "nan", " NaN ", "inf", "-Infinity", "OVER", "", "1,5"]),
)


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_values_mean_what_parse_nr3_means(analyzer: Opened) -> None:
    _, _, driver = analyzer
    names = [name for name, _, _ in driver._items]

    @given(st.lists(_FIELDS, min_size=len(names), max_size=len(names)))
    def check(fields: list[str]) -> None:
        answer = ",".join(fields)
        parts = answer.split(",")
        try:
            expected = {n: parse_nr3(f) for n, f in zip(names, parts, strict=True)}
        except (ValueError, TypeError):  # a field no number, or a comma inside one
            assert driver._values(answer) is None
            return
        got = driver._values(answer)
        assert got is not None and list(got) == names
        assert all(_same(got[n], expected[n]) for n in names), (got, expected)

    check()


def test_read_maps_the_codes_like_measure(analyzer: Opened) -> None:
    emu, _, driver = analyzer
    emu.scpi.register(VALUE_QUERY, lambda call: _answer(len(driver._items)), replace=True)
    values = driver.measure()
    for name in ("U", "I", "P", "S"):
        assert _same(driver.read(name).value, values[name])
    assert math.isnan(values["U"]) and values["I"] == math.inf and values["P"] == -math.inf
    assert values["S"] == 1.5


def test_a_malformed_answer_is_still_refused_by_read(analyzer: Opened) -> None:
    emu, _, driver = analyzer
    fields = ["1.0E+00"] * len(driver._items)
    fields[-1] = "OVER"  # only the last field is bad; read("P") must still see it
    emu.scpi.register(VALUE_QUERY, lambda call: ",".join(fields), replace=True)
    with pytest.raises(ProtocolError, match="expected 12 numbers"):
        driver.read("P")


def _answer(count: int) -> str:
    head = [f"{NAN_CODE:.3E}", f"{INF_CODE:.3E}", f"{-INF_CODE:.3E}", "1.5E+00"]
    return ",".join(head + ["0.0E+00"] * (count - len(head)))
