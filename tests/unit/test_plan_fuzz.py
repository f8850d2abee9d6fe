"""Fuzzing the plan path: whatever a file holds, hil answers with a ``HilError``.

Generated plan-shaped documents (real and wrong keys, wrong types, real and
bogus names, durations as numbers and strings, ``${…}`` with random tokens)
and raw text go through ``load_plan`` → ``instances()`` → ``resolve_plan``
against the emulated bench: success or a ``HilError``, nothing else.
Expressions go through ``parse`` and ``evaluate``: only ``ExpressionError``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from hil.bench.definition import DeviceDefinition
from hil.bench.loader import load_bench
from hil.errors import HilError
from hil.expressions import ExpressionError, parse
from hil.plan.loader import load_plan
from hil.plan.resolve import resolve_plan
from tests.conftest import EMULATED_BENCH

MAX_DOC_BYTES = 20_000

# --- names and values -----------------------------------------------------------------

DEVICES = ["ev", "smart_plug", "power_analyzer", "evv", "smartplug", "Ev", ""]
SIGNALS = [
    "ev.DRIVE_Status.VehicleSpeed",
    "ev.BODY_Status.LockFL",
    "ev.BODY_Status.LockResult",
    "ev.HIL_VehicleSim",
    "ev.BODY_LockCmd",
    "smart_plug.switch.on",
    "smart_plug.load_current",
    "smart_plug.power-consumption.electric-power",
    "power_analyzer.P",
    "power_analyzer.WP",
    "power_analyzer.INTEGRATION",
    "power_analyzer.integration",
    "power_analyzer.crest_factor",
    "ev.BODY_Status.LockFX",
    "evv.BODY_Status.LockFL",
    "smart_plug.switch.onn",
    "ev.",
    "ev",
    "x.y.z",
]
FIELDS = ["TargetSpeed", "Gear", "Accel", "LockRequest", "Source", "command", "value", "Bogus"]
PARAMS = ["speed", "limit", "bound", "watts", "unknown_p"]
KEYS_TOP = [
    "spec", "id", "title", "description", "version", "requirements", "severity", "tags",
    "owner", "devices", "require", "parameters", "matrix", "invariants", "setup", "steps",
    "teardown", "titel", "step",
]  # fmt: skip
KEYS_CONSTRAINT = [
    "equals", "not", "min", "max", "one_of", "any_of", "tolerance", "changes",
    "unchanged", "rising_through", "falling_through", "equal",
]  # fmt: skip
WORDS = ["LOCKED", "UNLOCKED", "LOCKD", "D", "P", "START", "RESET", "CF6", "on", "true", "x"]
UNITS = ["", " ms", " s", " min", " h", " us", " sec", " A", " V", " W", " km/h", " %", " mA"]
TOKENS = [
    *PARAMS, *SIGNALS[:3], "1", "0", "2.5", "1e3", ".5", "'s'", '"LOCKED"', "true", "false",
    "and", "or", "not", "in", "+", "-", "*", "/", "%", "==", "!=", "<", "<=", ">", ">=",
    "(", ")", "[", "]", ",", "abs(", "min(", "max(", "round(", "&&", "&", "|", "!", "=",
    "**", "\\", "'", "$", "{", "}", "ev.", "a-b", "1a", "TRUE",
]  # fmt: skip

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(WORDS),
)
quantities = st.builds(
    lambda n, u: f"{n:g}{u}",
    st.floats(-1e4, 1e4, allow_nan=False) | st.sampled_from([0.0, -1.0, 1e400, 1e-9]),
    st.sampled_from(UNITS),
)
expressions = st.builds(
    lambda tokens: "${" + " ".join(tokens) + "}",
    st.lists(st.sampled_from(TOKENS), min_size=0, max_size=8),
)
values = st.one_of(scalars, quantities, expressions)
durations = st.one_of(
    st.floats(-10, 1e4, allow_nan=False),
    st.integers(-5, 100),
    quantities,
    expressions,
    st.sampled_from(["soon", "", "1 s 2", "-0 s", "nan", "inf s"]),
)
signal_refs = st.sampled_from(SIGNALS)
small_dicts = st.dictionaries(st.sampled_from(FIELDS), values, max_size=3)


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` about 9 times in 10, so most documents get past the first check."""
    return st.integers(0, 9).flatmap(lambda i: bad if i == 0 else good)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The value, or now and then something of the wrong type instead."""
    return mostly(strategy, st.one_of(scalars, st.lists(scalars, max_size=2)))


def mapping(required: dict[str, st.SearchStrategy[Any]], optional: dict[str, Any]) -> Any:
    """A dict with the required keys (usually), some optional ones and maybe a wrong one."""
    return st.builds(
        _merge,
        st.fixed_dictionaries(required, optional=optional),
        mostly(st.just(set()), st.sets(st.sampled_from(list(required)), max_size=1)),
        mostly(
            st.just({}),
            st.dictionaries(st.sampled_from(["extra", "withn", "signall", "for_"]), values),
        ),
    )


def _merge(base: dict[str, Any], drop: set[str], extra: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in base.items() if k not in drop}
    out.update(extra)
    return out


constraint_parts = {
    k: maybe(values) for k in KEYS_CONSTRAINT if k not in ("any_of", "changes", "unchanged")
}
constraint_parts["changes"] = st.sampled_from([True, False, "yes"])
constraint_parts["unchanged"] = st.sampled_from([True, None])
anchors = mapping(
    {"signal": maybe(signal_refs)},
    {"rising_through": maybe(values), "equals": maybe(values), "timeout": durations},
)
expects = mapping(
    {"within": durations},
    {
        "signal": maybe(signal_refs),
        "signals": st.lists(signal_refs, max_size=3),
        "for": durations,
        "after": anchors,
        **constraint_parts,
    },
)
measures = mapping(
    {"signal": maybe(signal_refs), "duration": durations, "limit": maybe(
        st.fixed_dictionaries({}, optional={
            "min": values, "max": values, "marginal_min": values, "marginal_max": values,
            "unit": st.sampled_from(["W", "A", "V", "kW", "x"]),
        })
    )},
    {"interval": durations, "settle": durations,
     "statistic": st.sampled_from(["mean", "max", "average"])},
)  # fmt: skip
prompts = mapping(
    {"message": maybe(st.text(max_size=20))},
    {"kind": st.sampled_from(["confirm", "choice", "text", "instruction", "ask"]),
     "choices": st.lists(st.text(max_size=5), max_size=3), "expect": values},
)  # fmt: skip
bodies = {
    "send": mapping({"message": maybe(signal_refs)}, {"signals": maybe(small_dicts)}),
    "set": mapping({"target": maybe(signal_refs), "value": values}, {}),
    "call": mapping({"action": maybe(signal_refs)}, {"args": maybe(small_dicts)}),
    "expect": expects,
    "measure": measures,
    "wait": mapping({"duration": durations}, {}),
    "prompt": prompts,
}


def steps(depth: int = 0) -> st.SearchStrategy[list[Any]]:
    kinds = {**bodies}
    if depth < 1:
        kinds["group"] = st.fixed_dictionaries(
            {"name": st.text(min_size=0, max_size=8), "steps": st.deferred(lambda: steps(1))}
        )
    step = st.builds(
        _merge,
        st.fixed_dictionaries(
            {},
            optional={
                "id": st.sampled_from(["a", "b", "step-1", "bad id", "1"]),
                "save_as": st.sampled_from(["watts", "w1", "1bad"]),
                "require": st.sampled_from(
                    ["ev.door_locks", "ev.uds", "smart_plug.power_meterng", "ev & x", "ev"]
                ),
                "name": st.text(max_size=10),
            },
        ),
        st.just(set()),
        st.one_of(
            *(st.builds(lambda k, b: {k: b}, st.just(k), s) for k, s in kinds.items()),
            st.dictionaries(st.sampled_from(list(kinds)), values, max_size=2),
        ),
    )
    return st.lists(maybe(step), min_size=0, max_size=4)


parameters = st.dictionaries(
    st.sampled_from(PARAMS),
    maybe(
        st.fixed_dictionaries(
            {"default": values},
            optional={
                "type": st.sampled_from(["number", "integer", "duration", "bool", "string", "x"]),
                "min": st.floats(-10, 10) | st.none(),
                "max": st.floats(-10, 100) | st.none(),
                "choices": st.lists(scalars, max_size=3),
                "unit": st.sampled_from(["km/h", "A", "W"]),
            },
        )
    ),
    max_size=3,
)
matrices = st.dictionaries(
    st.sampled_from(PARAMS), st.lists(values, min_size=0, max_size=3), max_size=2
)
invariants = st.lists(
    st.fixed_dictionaries(
        {"id": st.sampled_from(["inv", "inv-2", "bad id"])},
        optional={"always": st.one_of(st.sampled_from(SIGNALS[:6]), expressions, st.text())},
    ),
    max_size=2,
)
plans = st.builds(
    _merge,
    st.fixed_dictionaries(
        {
            "spec": mostly(st.just(1), scalars),
            "id": maybe(mostly(st.sampled_from(["F1", "f-2"]), st.just("bad id"))),
            "title": maybe(st.text(min_size=1, max_size=20)),
            "devices": maybe(
                mostly(
                    st.just(["ev", "smart_plug", "power_analyzer"]),
                    st.lists(st.sampled_from(DEVICES), min_size=1, max_size=3),
                )
            ),
            "steps": steps(),
        },
        optional={
            "require": st.sampled_from(
                ["ev.door_locks", "ev.can_fd", "ev.door_lock", "ev & smart_plug.switch", "true"]
            ),
            "parameters": parameters,
            "matrix": matrices,
            "invariants": invariants,
            "setup": steps(),
            "teardown": steps(),
            "severity": st.sampled_from(["critical", "high"]),
            "tags": maybe(st.lists(st.text(max_size=5), max_size=2)),
            "requirements": maybe(st.lists(st.text(max_size=8), max_size=2)),
        },
    ),
    mostly(st.just(set()), st.sets(st.sampled_from(["spec", "id", "title", "devices", "steps"]))),
    mostly(st.just({}), st.dictionaries(st.sampled_from(KEYS_TOP), values, max_size=1)),
)


# --- the plan path ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def bench_names() -> tuple[dict[str, DeviceDefinition], dict[str, frozenset[str]]]:
    bench = load_bench(EMULATED_BENCH)
    return bench.definitions(), bench.capabilities()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Fresh file names; hypothesis cannot use function-scoped fixtures like tmp_path."""
    folder = tmp_path_factory.mktemp("fuzz")
    return (folder / f"plan-{i}.yaml" for i in itertools.count())


def load_and_resolve(
    path: Path,
    text: str | bytes,
    names: tuple[dict[str, DeviceDefinition], dict[str, frozenset[str]]],
) -> None:
    """Run the whole plan path on ``text``: success or ``HilError``, nothing else."""
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    definitions, capabilities = names
    try:
        loaded = load_plan(path)
        for instance in loaded.instances():
            resolve_plan(instance, definitions, capabilities)
    except HilError as err:
        message = str(err)
        assert message.startswith(str(path)), message
    finally:
        path.unlink()


@settings(max_examples=300)
@given(plan=plans)
def test_generated_plans_load_or_fail_with_a_hil_error(
    plan: dict[str, Any],
    files: Iterator[Path],
    bench_names: tuple[dict[str, DeviceDefinition], dict[str, frozenset[str]]],
) -> None:
    text = yaml.safe_dump(plan, allow_unicode=True, sort_keys=False)
    if len(text.encode()) > MAX_DOC_BYTES:
        text = text[: MAX_DOC_BYTES // 2]  # still a document hil must answer for
    load_and_resolve(next(files), text, bench_names)


yaml_noise = st.lists(
    st.sampled_from(
        [
            "spec: 1\n", "id: X\n", "title: t\n", "devices: [ev]\n", "steps:\n",
            "  - wait: {duration: 1}\n", "- ", "  ", ": ", "&a ", "*a ", "!!str ", "!x ",
            "[", "]", "{", "}", ",", "? ", "'", '"', "#", "\t", "\n", "<<: *a\n", "---\n",
            "...\n", "%YAML 1.1\n", "|\n", ">\n", "${", "é", "\ufeff",
        ]
    ),
    max_size=40,
).map("".join)  # fmt: skip


@settings(max_examples=200)
@given(
    text=st.one_of(
        yaml_noise,
        st.text(max_size=300),
        st.binary(max_size=300),
    )
)
def test_raw_text_loads_or_fails_with_a_hil_error(
    text: str | bytes,
    files: Iterator[Path],
    bench_names: tuple[dict[str, DeviceDefinition], dict[str, frozenset[str]]],
) -> None:
    load_and_resolve(next(files), text, bench_names)


# --- expressions --------------------------------------------------------------------------

lookup_values = st.one_of(
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=5),
)


@settings(max_examples=300)
@given(
    source=st.one_of(
        st.lists(st.sampled_from(TOKENS), max_size=12).map(" ".join),
        st.lists(st.sampled_from(TOKENS), max_size=12).map("".join),
        st.text(max_size=40),
    ),
    env=st.dictionaries(st.sampled_from([*PARAMS, *SIGNALS[:3]]), lookup_values, max_size=6),
)
def test_expressions_raise_only_expression_errors(source: str, env: dict[str, Any]) -> None:
    try:
        expr = parse(source)
    except ExpressionError:
        return
    error: ExpressionError | None = None
    try:
        expr.evaluate(lambda name: env[name])
    except ExpressionError as err:
        error = err
    if error is not None:  # located inside the source (or just past its end)
        assert isinstance(error.column, int) and 1 <= error.column <= len(source) + 1
