"""The expression language: precedence, names, located errors, and fuzzing."""

from __future__ import annotations

import math
import pickle
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hil.errors import HilError
from hil.expressions import (
    MAX_DEPTH,
    Expression,
    ExpressionError,
    is_expression,
    parse,
    unwrap,
)

ENV: dict[str, Any] = {
    "x": 3,
    "y": 2.5,
    "t": True,
    "f": False,
    "s": "on",
    "ev.uds": True,
    "ev.fd": False,
    "ev.speed": 40,
    "a": 10,
    "b": 4,
    "a-b": 99,
    "smart_plug.power-consumption.electric-power": 1.5,
    "levels": [1, 2, 3],
}


def env_lookup(name: str) -> Any:
    return ENV[name]


def run(source: str, lookup: Callable[[str], Any] = env_lookup) -> Any:
    return parse(source).evaluate(lookup)


# ---------------------------------------------------------------- values


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 + 2 * 3 == 7", True),
        ("(1 + 2) * 3", 9),
        ("10 - 4 - 3", 3),  # left-associative
        ("64 / 4 / 2", 8.0),
        ("2 * 3 % 4", 2),  # (2 * 3) % 4
        ("7 % -2", -1),  # Python's sign convention
        ("7 / 2", 3.5),
        ("8 / 2", 4.0),
        ("-2 * -3", 6),
        ("- -2", 2),
        ("+x", 3),
        ("-x + 1", -2),
        ("not f and t", True),
        ("not t and f", False),  # (not t) and f
        ("not (t and f)", True),
        ("not not t", True),
        ("t or t and f", True),  # t or (t and f)
        ("(t or t) and f", False),
        ("not x == 3", False),  # not (x == 3)
        ("0 <= x < 10", True),
        ("0 <= x < 3", False),
        ("1 < 2 < 3 < 4", True),
        ("3 > 2 == 2", True),
        ("x == 3 and y > 2", True),
        ("x in [1, 2]", False),
        ("x in [1, 2, 3]", True),
        ("x not in [1, 2]", True),
        ("s in ['on', 'off']", True),
        ("x in levels", True),
        ("x in []", False),
        ("1 == true", False),  # bools are not numbers
        ("true == true", True),
        ("[1, 2] == [1, 2]", True),
        ("[1, true] == [1, 1]", False),
        ("1 == 1.0", True),
        ("'a' != 'b'", True),
        ("'abc' < 'abd'", True),
        ("s + '!'", "on!"),
        ("1.5 + .5", 2.0),
        ("1e3", 1000.0),
        ("2.5E-3 * 1000", 2.5),
        ("1e308 * 1e308", math.inf),
        ("abs(-3)", 3),
        ("abs(y - 5)", 2.5),
        ("min(3, 1, 2)", 1),
        ("max(x, y, 2)", 3),
        ("round(2.5)", 2),
        ("round(2.567, 2)", 2.57),
        ("round(1234, -2)", 1200),
        ("round(y) + 1", 3),
        ("a-1", 9),  # a minus 1
        ("a - b", 6),
        ("a -b", 6),
        ("a-b", 99),  # one hyphenated name
        ("smart_plug.power-consumption.electric-power * 2", 3.0),
        ("ev.uds and not ev.fd", True),
        ("ev.speed >= 20", True),
    ],
)
def test_values(source: str, expected: Any) -> None:
    result = run(source)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("source", "value"),
    [
        (r'"a\"b"', 'a"b'),
        (r"'a\'b'", "a'b"),
        (r"'back\\slash'", "back\\slash"),
        (r"""'say "hi"'""", 'say "hi"'),
        (r'''"it's"''', "it's"),
        ("''", ""),
    ],
)
def test_string_escapes(source: str, value: str) -> None:
    assert run(source) == value


def test_names_in_source_order_with_columns() -> None:
    expr = parse("ev.speed > 20 and min(a-b, a - b) in [x, x] or not smart_plug.on-off")
    assert expr.names() == [
        ("ev.speed", 1),
        ("a-b", 23),
        ("a", 28),
        ("b", 32),
        ("x", 39),
        ("x", 42),
        ("smart_plug.on-off", 52),
    ]
    assert parse("1 + 2").names() == []
    assert parse("abs + max").names() == [("abs", 1), ("max", 7)]  # not calls: plain names


def test_expression_is_a_frozen_value() -> None:
    expr = parse("a + 1")
    assert isinstance(expr, Expression)
    assert expr == parse("a + 1")
    assert expr.source == "a + 1"
    with pytest.raises(AttributeError):
        expr.source = "b"  # type: ignore[misc]


def test_and_or_short_circuit() -> None:
    def lookup(name: str) -> Any:
        if name == "boom":
            raise AssertionError("must not be read")
        return ENV[name]

    assert run("f and boom", lookup) is False
    assert run("t or boom", lookup) is True
    assert run("1 > 2 < boom", lookup) is False


# ---------------------------------------------------------------- syntax errors


@pytest.mark.parametrize(
    ("source", "column", "words"),
    [
        ("ev.uds & ev.fd", 8, "unexpected '&'; use 'and'"),
        ("a && b", 3, "unexpected '&&'; use 'and'"),
        ("a | b", 3, "unexpected '|'; use 'or'"),
        ("a || b", 3, "unexpected '||'; use 'or'"),
        ("!a", 1, "unexpected '!'; use 'not'"),
        ("x ! = 1", 3, "use 'not'"),
        ("a = 1", 3, "unexpected '='; use '=='"),
        ("a === 1", 5, "use '=='"),
        ("a ** 2", 3, "there is no power operator"),
        ("x == True", 6, "unknown name 'True'; use true/false"),
        ("False", 1, "use true/false"),
        ('s == "on', 6, "unterminated string"),
        ("'on\\'", 1, "unterminated string"),
        (r"'a\nb'", 3, "unsupported escape '\\n'"),
        ("(a + b", 1, "'(' is never closed"),
        ("((a + b)", 1, "'(' is never closed"),
        ("x in [1, 2", 6, "'[' is never closed"),
        ("min(a, b", 4, "'(' is never closed"),
        ("a + b)", 6, "unmatched ')'"),
        ("a]", 2, "unmatched ']'"),
        ("(a]", 3, "expected ')' to close '(' at column 1, got ']'"),
        ("[a)", 3, "expected ']' to close '[' at column 1, got ')'"),
        ("mn(a, b)", 1, "unknown function 'mn'; did you mean 'min'?"),
        ("rond(y)", 1, "did you mean 'round'?"),
        ("sqrt(x)", 1, "unknown function 'sqrt'; expected one of 'abs', 'max', 'min', 'round'"),
        ("a.b()", 1, "only abs, min, max, round can be called"),
        ("x + ev.uds.read(1)", 5, "only abs, min, max, round can be called"),
        ("(a)(b)", 4, "only abs, min, max, round can be called"),
        ("'s'(1)", 4, "only abs, min, max, round can be called"),
        ("abs(1, 2)", 1, "abs() takes 1 argument, got 2"),
        ("round()", 1, "round() takes 1 or 2 arguments, got 0"),
        ("max(1)", 1, "max() takes at least 2 arguments, got 1"),
        ("a b", 3, "unexpected name 'b'; expected an operator or the end"),
        ("1 2", 3, "unexpected number 2"),
        ("x == 1 'a'", 8, "unexpected string 'a'"),
        ("a not b", 3, "unexpected 'not'"),
        ("", 1, "empty expression"),
        ("   ", 1, "empty expression"),
        ("a.", 2, "name 'a.' ends with '.'"),
        ("ev.speed. > 1", 9, "name 'ev.speed.' has '.' not followed by a name"),
        ("a..b", 2, "'.' not followed by a name"),
        ("a + ", 5, "expected a value after '+', got the end of the expression"),
        ("a * )", 5, "expected a value after '*', got ')'"),
        (")", 1, "expected a value, got ')'"),
        ("1.", 1, "malformed number '1.'"),
        ("1.5.3", 1, "malformed number '1.5.3'"),
        ("2e", 1, "malformed number '2e'"),
        ("3abc", 1, "malformed number '3abc'"),
        ("a == not b", 6, "put 'not …' in parentheses here"),
        ("-not t", 2, "put 'not …' in parentheses here"),
        ("levels[0]", 7, "indexing is not supported"),
        ("a @ b", 3, "unexpected character '@'"),
        ("a ; b", 3, "unexpected character ';'"),
        ("a . b", 3, "unexpected character '.'"),
        ("x\u00e9", 2, "unexpected character 'é'"),
    ],
)
def test_syntax_errors_are_located(source: str, column: int, words: str) -> None:
    with pytest.raises(ExpressionError) as caught:
        parse(source)
    err = caught.value
    assert err.column == column, str(err)
    assert words in err.reason, str(err)
    assert str(err) == f"column {column}: {err.reason} (in: {source})"
    assert err.expression == source


def test_error_message_format() -> None:
    with pytest.raises(ExpressionError) as caught:
        parse("ev.uds & ev.fd")
    assert str(caught.value) == "column 8: unexpected '&'; use 'and' (in: ev.uds & ev.fd)"
    assert isinstance(caught.value, HilError)
    assert isinstance(caught.value, ValueError)


def test_error_pickles_with_its_fields() -> None:
    with pytest.raises(ExpressionError) as caught:
        parse("a && b")
    copy = pickle.loads(pickle.dumps(caught.value))  # noqa: S301 - our own bytes, as xdist does
    assert type(copy) is ExpressionError
    assert str(copy) == str(caught.value)
    assert (copy.expression, copy.column, copy.reason) == (
        "a && b",
        3,
        "unexpected '&&'; use 'and'",
    )


# ---------------------------------------------------------------- limits


def test_too_long() -> None:
    with pytest.raises(ExpressionError, match="2001 characters long; the limit is 2000"):
        parse("1 + " * 500 + "1")  # 2001 characters
    assert run("1 + " * 499 + "1") == 500  # and a long flat chain is fine


@pytest.mark.parametrize(
    "source",
    [
        "(" * 10_000,
        "(" * 10_000 + "1" + ")" * 10_000,
        "(" * 1000 + "1" + ")" * 1000,
        "[" * 1000 + "]" * 1000,
        "-" * 1999 + "1",
        "not " * 490 + "t",
        "abs(" * 300 + "1" + ")" * 300,
    ],
    ids=["10k-open", "10k-balanced", "1k-balanced", "1k-brackets", "minus", "not", "calls"],
)
def test_deep_nesting_is_an_error_not_a_crash(source: str) -> None:
    with pytest.raises(ExpressionError, match="nested too deeply|characters long"):
        parse(source)


def test_nesting_at_the_limit_parses_and_evaluates() -> None:
    assert run("(" * MAX_DEPTH + "x" + ")" * MAX_DEPTH) == 3
    assert run("-" * MAX_DEPTH + "1") == 1
    with pytest.raises(ExpressionError, match="nested too deeply") as caught:
        parse("(" * (MAX_DEPTH + 1) + "x" + ")" * (MAX_DEPTH + 1))
    assert caught.value.column == MAX_DEPTH + 1
    # Every precedence level at every nesting level: the deepest tree there is.
    inner = "x"
    for _ in range(MAX_DEPTH):
        inner = f"(f or t and 1 == 1 + 1 * {inner})"
    expr = parse(inner)
    assert len(expr.names()) == 2 * MAX_DEPTH + 1
    with pytest.raises(ExpressionError, match="'\\*' needs numbers, got false"):
        expr.evaluate(env_lookup)  # evaluates all the way down, then fails on a type


# ---------------------------------------------------------------- evaluation errors


@pytest.mark.parametrize(
    ("source", "column", "words"),
    [
        ("x + nope", 5, "unknown name 'nope'"),
        ("t and 3", 7, "'and' needs true/false, got 3 (number)"),
        ("x or t", 1, "'or' needs true/false, got 3 (number)"),
        ("not s", 5, "'not' needs true/false, got 'on' (string)"),
        ("x / 0", 3, "division by zero"),
        ("x / (a - 10)", 3, "division by zero"),
        ("y % 0.0", 3, "modulo by zero"),
        ("t + 1", 1, "'+' needs numbers, got true (true/false)"),
        ("1 - ev.uds", 5, "'-' needs numbers, got true (true/false)"),
        ("-t", 2, "unary '-' needs a number, got true"),
        ("s * 2", 1, "'*' needs numbers, got 'on' (string)"),
        ("s + 1", 5, "'+' after a string needs a string, got 1 (number)"),
        ("1 + s", 5, "'+' needs numbers, got 'on' (string)"),
        ("x < s", 3, "'<' cannot compare 3 (number) with 'on' (string)"),
        ("x >= t", 6, "'>=' needs two numbers or two strings, got true"),
        ("[1] < [2]", 1, "'<' needs two numbers or two strings, got [1] (list)"),
        ("x in 3", 6, "'in' needs a list on the right, got 3 (number)"),
        ("s not in 'onoff'", 10, "'not in' needs a list on the right"),
        ("abs(t)", 5, "abs() needs numbers, got true"),
        ("max(1, s)", 8, "max() needs numbers, got 'on' (string)"),
        ("round(y, 1.5)", 10, "round()'s digits must be a whole number, got 1.5"),
        ("round(y, t)", 10, "round()'s digits must be a whole number, got true"),
        ("round(x, -1000)", 10, "round()'s digits must be within ±400"),
        ("round(1e308 * 10)", 1, "cannot compute this"),
    ],
)
def test_evaluation_errors_are_located(source: str, column: int, words: str) -> None:
    expr = parse(source)
    with pytest.raises(ExpressionError) as caught:
        expr.evaluate(env_lookup)
    assert caught.value.column == column, str(caught.value)
    assert words in caught.value.reason, str(caught.value)


def test_lookup_values_and_hints() -> None:
    def lookup(name: str) -> Any:
        if name == "missing":
            raise KeyError("did you mean 'mising'?")
        if name == "nothing":
            return None
        raise KeyError(name)

    with pytest.raises(ExpressionError, match="unknown name 'missing'; did you mean 'mising'"):
        run("missing", lookup)
    with pytest.raises(ExpressionError, match=r"column 5: unknown name 'other' \(in"):
        run("1 + other", lookup)
    with pytest.raises(ExpressionError, match="'nothing' is None \\(NoneType\\), which"):
        run("nothing == 1", lookup)
    with pytest.raises(ExpressionError, match="'big' is a 9001-bit integer"):
        run("big", lambda _: 2**9000)
    with pytest.raises(ExpressionError, match="column 5: integer result too large"):
        run("big * big", lambda _: 2**5000)


def test_other_lookup_exceptions_pass_through() -> None:
    def lookup(name: str) -> Any:
        raise TimeoutError(name)

    with pytest.raises(TimeoutError):
        run("x", lookup)


# ---------------------------------------------------------------- plan syntax


def test_is_expression_and_unwrap() -> None:
    assert is_expression("${ a + 1 }")
    assert is_expression("  ${a}  ")
    assert not is_expression("a + 1")
    assert not is_expression("${a} V")
    assert not is_expression(42)
    assert unwrap("${ a + 1 }") == ("a + 1", 3)
    assert unwrap("  ${x}") == ("x", 4)
    assert unwrap("${}") == ("", 2)
    text, offset = unwrap("${ ev.uds & ev.fd }")
    with pytest.raises(ExpressionError) as caught:
        parse(text)
    assert "${ ev.uds & ev.fd }"[offset + caught.value.column - 1] == "&"
    with pytest.raises(ExpressionError, match="not an expression"):
        unwrap("a + 1")


# ---------------------------------------------------------------- fuzzing

PIECES = [
    *"abxyz019 .,()[]+-*/%<>=!&|'\"\\_",
    "ev.speed", "a-b", "x-1", "1.5", ".5", "1e3", "2.5E-3", "==", "!=", "<=", ">=",
    " and ", " or ", " not ", " in ", "true", "false", "True", "abs(", "min(", "max(",
    "round(", "foo(", "t", "f", "\u00e9", "\n", "\t",
]  # fmt: skip
FUZZ_VALUES = st.one_of(
    st.integers(-(2**70), 2**70),
    st.floats(),
    st.booleans(),
    st.none(),  # stands for "unknown name"
)


def check_total(source: str, data: st.DataObject) -> None:
    started = time.perf_counter()
    try:
        expr = parse(source)
    except ExpressionError:
        return
    finally:
        assert time.perf_counter() - started < 1.0

    def lookup(name: str) -> Any:
        value = data.draw(FUZZ_VALUES)
        if value is None:
            raise KeyError(name)
        return value

    for name, column in expr.names():
        assert source[column - 1 : column - 1 + len(name)] == name
    failure: ExpressionError | None = None
    try:
        expr.evaluate(lookup)
    except ExpressionError as err:
        failure = err
    assert failure is None or 1 <= failure.column <= len(source) + 1


@given(st.text(max_size=300), st.data())
def test_any_text_parses_or_raises_expression_error(source: str, data: st.DataObject) -> None:
    check_total(source, data)


@given(st.lists(st.sampled_from(PIECES), max_size=120).map("".join), st.data())
def test_token_soup_parses_or_raises_expression_error(source: str, data: st.DataObject) -> None:
    check_total(source[:300], data)


# Well-formed trees: ("lit", v) ("var", name) ("neg", t) ("not", t) ("bin", op, l, r)
# ("bool", op, l, r) ("cmp", ops, operands) ("in", negated, t, items) ("call", fn, args)
Tree = tuple[Any, ...]
NUMBERS = {"x": 3, "y": 2.5, "ev.speed": 40, "smart_plug.power-consumption.electric-power": 1.5}
BOOLS = {"t": True, "f": False, "ev.uds": True, "ev.fd": False}
ATOM, UNARY, PRODUCT, SUM, CMP, NOT, AND, OR = 8, 7, 6, 5, 4, 3, 2, 1
POWER = {"+": SUM, "-": SUM, "*": PRODUCT, "/": PRODUCT, "%": PRODUCT, "and": AND, "or": OR}


NUMBER_LEAF = st.one_of(
    st.integers(-1000, 1000).map(lambda n: ("lit", n)),
    st.floats(-1000, 1000).map(lambda v: ("lit", v)),
    st.sampled_from(sorted(NUMBERS)).map(lambda name: ("var", name)),
)
BOOL_LEAF = st.one_of(
    st.booleans().map(lambda b: ("lit", b)),
    st.sampled_from(sorted(BOOLS)).map(lambda name: ("var", name)),
)


@st.composite
def numeric(draw: st.DrawFn, depth: int = 4) -> Tree:
    """Mostly operators (precedence is the point), some negations and calls."""
    choice = draw(st.integers(0, 9)) if depth > 0 else 0
    if choice == 0:
        return draw(NUMBER_LEAF)
    if choice == 1:
        return ("neg", draw(numeric(depth - 1)))
    if choice == 2:
        function = draw(st.sampled_from(["abs", "round", "min", "max", "round2"]))
        if function == "round2":
            digits = draw(st.integers(-3, 3))
            return ("call", "round", (draw(numeric(depth - 1)), ("lit", digits)))
        count = 1 if function in ("abs", "round") else draw(st.integers(2, 3))
        return ("call", function, tuple(draw(numeric(depth - 1)) for _ in range(count)))
    op = draw(st.sampled_from("+-*/%"))
    return ("bin", op, draw(numeric(depth - 1)), draw(numeric(depth - 1)))


@st.composite
def boolean(draw: st.DrawFn, depth: int = 3) -> Tree:
    """Mostly and/or/not over comparisons, chained comparisons and ``in``."""
    choice = draw(st.integers(0, 9)) if depth > 0 else draw(st.integers(0, 2))
    if choice == 0:
        return draw(BOOL_LEAF)
    if choice == 1:
        ops = draw(
            st.lists(st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), min_size=1, max_size=3)
        )
        return ("cmp", tuple(ops), tuple(draw(numeric(2)) for _ in range(len(ops) + 1)))
    if choice == 2:
        items = draw(st.lists(numeric(1), max_size=3))
        return ("in", draw(st.booleans()), draw(numeric(2)), tuple(items))
    if choice == 3:
        return ("not", draw(boolean(depth - 1)))
    op = draw(st.sampled_from(["and", "or"]))
    return ("bool", op, draw(boolean(depth - 1)), draw(boolean(depth - 1)))


def render(tree: Tree) -> tuple[str, int]:
    """Source text with only the parentheses precedence needs, and its binding power."""
    kind = tree[0]
    if kind == "lit":
        value = tree[1]
        if isinstance(value, bool):
            return ("true" if value else "false"), ATOM
        text = repr(value)
        return text, UNARY if text.startswith("-") else ATOM
    if kind == "var":
        return tree[1], ATOM
    if kind in ("neg", "not"):
        text, power = render(tree[1])
        if kind == "neg":
            return "-" + wrap(text, power < UNARY), UNARY
        return "not " + wrap(text, power < NOT), NOT
    if kind in ("bin", "bool"):
        op, (left, left_power), (right, right_power) = tree[1], render(tree[2]), render(tree[3])
        power = POWER[op]
        return f"{wrap(left, left_power < power)} {op} {wrap(right, right_power <= power)}", power
    if kind == "cmp":
        parts = [wrap(text, power <= CMP) for text, power in map(render, tree[2])]
        text = parts[0] + "".join(
            f" {op} {part}" for op, part in zip(tree[1], parts[1:], strict=True)
        )
        return text, CMP
    if kind == "in":
        left, power = render(tree[2])
        items = ", ".join(render(item)[0] for item in tree[3])
        return f"{wrap(left, power <= CMP)} {'not in' if tree[1] else 'in'} [{items}]", CMP
    assert kind == "call"
    return f"{tree[1]}({', '.join(render(arg)[0] for arg in tree[2])})", ATOM


def wrap(text: str, needed: bool) -> str:
    return f"({text})" if needed else text


class Undefined(Exception):
    """The reference evaluation hit a division by zero or a non-finite round()."""


def reference(tree: Tree) -> Any:
    """What the tree means, computed by walking it with Python's operators."""
    kind = tree[0]
    if kind == "lit":
        return tree[1]
    if kind == "var":
        return {**NUMBERS, **BOOLS}[tree[1]]
    if kind == "neg":
        return -reference(tree[1])
    if kind == "not":
        return not reference(tree[1])
    if kind == "bool":
        left = reference(tree[2])
        if left is (tree[1] == "or"):
            return left
        return reference(tree[3])
    if kind == "bin":
        left, right = reference(tree[2]), reference(tree[3])
        if tree[1] in "/%" and right == 0:
            raise Undefined
        return {
            "+": lambda: left + right,
            "-": lambda: left - right,
            "*": lambda: left * right,
            "/": lambda: left / right,
            "%": lambda: left % right,
        }[tree[1]]()
    if kind == "cmp":
        left = reference(tree[2][0])
        for op, operand in zip(tree[1], tree[2][1:], strict=True):
            right = reference(operand)
            holds = {
                "==": left == right,
                "!=": left != right,
                "<": left < right,
                "<=": left <= right,
                ">": left > right,
                ">=": left >= right,
            }[op]
            if not holds:
                return False
            left = right
        return True
    if kind == "in":
        left = reference(tree[2])
        items = [reference(item) for item in tree[3]]  # a list is built before it is searched
        found = any(left == item for item in items)
        return found is not tree[1]
    args = [reference(arg) for arg in tree[2]]
    if tree[1] == "round":
        try:
            return round(*args)
        except (OverflowError, ValueError) as err:
            raise Undefined from err
    functions: dict[str, Callable[..., Any]] = {"abs": abs, "min": min, "max": max}
    return functions[tree[1]](*args)


def lookup_generated(name: str) -> Any:
    return {**NUMBERS, **BOOLS}[name]


def check_against_reference(tree: Tree) -> None:
    source, _ = render(tree)
    expr = parse(source)
    try:
        expected = reference(tree)
    except Undefined:
        with pytest.raises(ExpressionError):
            expr.evaluate(lookup_generated)
        return
    result = expr.evaluate(lookup_generated)
    if isinstance(expected, float) and math.isnan(expected):
        assert isinstance(result, float) and math.isnan(result), source
    else:
        assert result == expected, source
        assert type(result) is type(expected), source


@given(numeric())
def test_generated_arithmetic_matches_a_reference(tree: Tree) -> None:
    check_against_reference(tree)


@given(boolean())
def test_generated_conditions_match_a_reference(tree: Tree) -> None:
    check_against_reference(tree)


@given(st.one_of(numeric(), boolean()), st.data())
def test_well_formed_expressions_with_any_values_fail_cleanly(
    tree: Tree, data: st.DataObject
) -> None:
    check_total(render(tree)[0], data)  # names may be unknown, of any type, huge or nan
