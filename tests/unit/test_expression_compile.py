"""The compiled form of an expression means what the tree walker says it means.

``Expression.evaluate`` runs closures built once (``hil.expression_compile``);
the walker in ``hil.expression_eval`` is the reference. On random sources and
random values of every kind (numbers small, huge and not finite, strings,
true/false, lists, unknown names, a lookup that raises something else) both
must give the same value of the same type, or the same error at the same
column with the same message.
"""

from __future__ import annotations

import math
import operator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hil import expression_compile as compiled_module
from hil import expression_eval
from hil.expression_compile import compile_tree
from hil.expressions import ExpressionError, parse
from tests.unit.test_expressions import PIECES, boolean, numeric, render

VALUES = st.one_of(
    st.integers(-1000, 1000),
    st.integers(-(2**9000), 2**9000),  # beyond MAX_INT_BITS, and beyond float range
    st.floats(),
    st.booleans(),
    st.text(max_size=5),
    st.lists(st.one_of(st.integers(-5, 5), st.floats(-5, 5), st.booleans()), max_size=3),
    st.tuples(st.integers(-5, 5), st.text(max_size=2)),
    st.just([[1]]),  # a nested list: not usable
    st.none(),  # not usable
    st.just("unknown"),  # stands for a name the lookup does not know
    st.just("hint"),  # unknown, with a sentence to pass on
    st.just("broken"),  # the lookup fails in its own way
)


class LookupBroke(Exception):
    pass


def environment(values: dict[str, Any]) -> Any:
    def lookup(name: str) -> Any:
        value = values.get(name, "unknown")
        if value == "unknown":
            raise KeyError(name)
        if value == "hint":
            raise KeyError(f"{name} is not decoded from any frame")
        if value == "broken":
            raise LookupBroke(name)
        return value

    return lookup


def outcome(run: Any) -> tuple[str, Any]:
    try:
        value = run()
    except ExpressionError as err:
        return "error", (err.column, str(err))
    except LookupBroke as err:
        return "raised", err.args
    return "value", value


def identical(left: Any, right: Any) -> bool:
    """Equal values of the same type, nan equal to nan, element by element in lists."""
    if type(left) is not type(right):
        return False
    if isinstance(left, float):
        return (math.isnan(left) and math.isnan(right)) or (
            left == right and math.copysign(1, left) == math.copysign(1, right)
        )
    if isinstance(left, list | tuple):
        return len(left) == len(right) and all(map(identical, left, right))
    return bool(left == right)


def agree(source: str, data: st.DataObject) -> None:
    try:
        expr = parse(source)
    except ExpressionError:
        return
    names = sorted({name for name, _ in expr.names()})
    forms_agree(source, {name: data.draw(VALUES, label=name) for name in names})


def forms_agree(source: str, values: dict[str, Any]) -> None:
    """Assert the walker and the compiled closures give the same outcome."""
    expr = parse(source)
    lookup = environment(values)
    walked = outcome(lambda: expression_eval.evaluate(expr.root, source, lookup))
    compiled = outcome(lambda: compile_tree(expr.root, source)(lookup))
    assert walked[0] == compiled[0], (source, walked, compiled)
    if walked[0] == "value":
        assert identical(walked[1], compiled[1]), (source, walked, compiled)
    else:
        assert walked[1] == compiled[1], source
    # and Expression.evaluate is the compiled form
    assert outcome(lambda: expr.evaluate(lookup))[0] == walked[0]


@given(st.one_of(numeric(), boolean()), st.data())
def test_compiled_agrees_with_the_walker_on_well_formed_expressions(
    tree: Any, data: st.DataObject
) -> None:
    agree(render(tree)[0], data)


@given(st.lists(st.sampled_from(PIECES), max_size=60).map("".join), st.data())
def test_compiled_agrees_with_the_walker_on_token_soup(source: str, data: st.DataObject) -> None:
    agree(source, data)


@pytest.mark.parametrize(
    ("source", "values"),
    [
        ("a + b", {"a": 2**8192 - 1, "b": 1}),  # int result too large: walker's message
        ("a * 1.5", {"a": 2**1100}),  # int too large to convert to float
        ("a / b", {"a": 1.0, "b": 0.0}),  # division by zero
        ("a % b", {"a": 1, "b": 0}),
        ("a - b - c", {"a": 1.0, "b": "x", "c": 1}),
        ("a < b", {"a": "x", "b": 1}),
        ("0 <= a < 10", {"a": 5.5}),
        ("a == true", {"a": 1}),
        ("not a", {"a": 0}),
        ("-a", {"a": True}),
        ("a or b", {"a": False, "b": 1.0}),
    ],
)
def test_fast_paths_hand_edge_cases_to_the_walker(source: str, values: dict[str, Any]) -> None:
    forms_agree(source, values)


def test_agreement_check_can_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    """A compiled form that computes a wrong value, or errs elsewhere, is caught."""
    assert not identical(1, 1.0)
    assert not identical(True, 1)
    assert not identical(0.0, -0.0)
    assert identical(math.nan, math.nan)
    assert not identical([1, 2], [1, 2.0])
    forms_agree("a + b", {"a": 1.5, "b": 2.0})
    monkeypatch.setitem(compiled_module._FAST_ARITH, "+", operator.sub)
    with pytest.raises(AssertionError):
        forms_agree("a + b", {"a": 1.5, "b": 2.0})
    monkeypatch.undo()
    forms_agree("a < 1", {"a": True})
    monkeypatch.setattr(compiled_module, "_NUMBER_TYPES", (int, float, bool))
    with pytest.raises(AssertionError):  # true < 1 is an error, not false
        forms_agree("a < 1", {"a": True})


def test_compiled_form_survives_pickling() -> None:
    import pickle

    expr = parse("a + 1 > 2")
    assert expr.evaluate(environment({"a": 5})) is True
    again = pickle.loads(pickle.dumps(expr))  # noqa: S301  # our own object, in-process
    assert again == expr
    assert again.evaluate(environment({"a": 0})) is False
