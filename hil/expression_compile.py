"""An expression tree turned, once, into a tree of Python closures.

Invariants are judged on every CAN frame, so walking the tree and
dispatching on node types each time costs more than the check itself. Each
node becomes one closure, built once per expression, that takes the
``lookup`` and returns the node's value. No text is ever turned into code: the
closures are fixed functions of this module, parameterised by the tree.

The meaning is the tree walker's (``hil.expression_eval``), which stays the
reference: a closure handles the common case inline (plain numbers compared
or combined, true/false in ``and``/``or``/``not``) and hands everything else
(strings, lists, wrong types, division by zero, huge integers) to the walker's
own rules, so values, errors, messages and columns are the same by
construction. ``tests/unit/test_expression_compile.py`` checks that the two
agree on random expressions and values.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hil.expression_eval import (
    _ARITH,
    _ORDER,
    MAX_INT_BITS,
    Arith,
    BoolOp,
    Call,
    Compare,
    ExpressionError,
    ListLiteral,
    Literal,
    Name,
    Node,
    Operation,
    Unary,
    _Evaluator,
    _usable,
    same,
)

Lookup = Callable[[str], Any]
Compiled = Callable[[Lookup], Any]

_FAST_ORDER = _ORDER  # the walker's own operators: the two paths cannot drift apart
# '/' and '%' are left out: a zero divisor needs the walker's message
_FAST_ARITH = {op: fn for op, fn in _ARITH.items() if op not in ("/", "%")}
# an int this small converts to float without OverflowError
_FLOAT_SAFE_BITS = 1000
_NUMBER_TYPES = (int, float)  # exact types: bool is an int subclass, not a number here


def compile_tree(root: Node, source: str) -> Compiled:
    """The closure computing ``root``'s value, as ``evaluate(root, source, lookup)`` would."""
    try:
        body = _Builder(source).build(root)
    except RecursionError as err:  # a safety net; parse() bounds the depth
        raise _too_deep(source) from err

    def run(lookup: Lookup) -> Any:
        try:
            return body(lookup)
        except RecursionError as err:
            raise _too_deep(source) from err

    return run


def _too_deep(source: str) -> ExpressionError:
    return ExpressionError("expression nested too deeply to evaluate", expression=source, column=1)


def _no_lookup(name: str) -> Any:
    raise KeyError(name)  # the walker below only judges values; names are read here


class _Builder:
    def __init__(self, source: str) -> None:
        # The walker's rules, for every case the closures do not handle inline.
        self.rules = _Evaluator(source, _no_lookup)

    def build(self, node: Node) -> Compiled:
        if isinstance(node, Literal):
            return _constant(node.value)
        if isinstance(node, Name):
            return self.name(node)
        if isinstance(node, ListLiteral):
            items = tuple(self.build(item) for item in node.items)
            return lambda lookup: [item(lookup) for item in items]
        if isinstance(node, Unary):
            return self.unary(node)
        if isinstance(node, BoolOp):
            return self.bool_op(node)
        if isinstance(node, Compare):
            return self.compare(node)
        if isinstance(node, Arith):
            return self.arith(node)
        return self.call(node)

    def name(self, node: Name) -> Compiled:
        key, rules = node.name, self.rules

        def value(lookup: Lookup) -> Any:
            try:
                found = lookup(key)
            except KeyError as err:
                raise rules.unknown(node, err) from err
            kind = type(found)
            if kind is float or kind is bool or kind is str:
                return found
            if kind is int and found.bit_length() <= MAX_INT_BITS:
                return found
            if not _usable(found):
                raise rules.unusable(node, found)
            return found

        return value

    def unary(self, node: Unary) -> Compiled:
        operand, inner, rules = self.build(node.operand), node.operand, self.rules
        if node.op == "not":

            def negation(lookup: Lookup) -> Any:
                found = operand(lookup)
                if found is True or found is False:
                    return not found
                return not rules.boolean(found, inner, "'not'")

            return negation
        minus = node.op == "-"

        def sign(lookup: Lookup) -> Any:
            found = operand(lookup)
            if type(found) not in _NUMBER_TYPES:
                rules.unary_operand(node, found)  # raises for anything but a number
            return -found if minus else found

        return sign

    def bool_op(self, node: BoolOp) -> Compiled:
        stop = node.op == "or"  # the value that decides early
        what, rules = repr(node.op), self.rules
        operands = tuple((self.build(item), item) for item in node.operands)

        def decide(lookup: Lookup) -> Any:
            for operand, item in operands:
                found = operand(lookup)
                if found is not True and found is not False:
                    rules.boolean(found, item, what)  # raises
                if found is stop:
                    return stop
            return not stop

        return decide

    def compare(self, node: Compare) -> Compiled:
        first = self.build(node.first)
        steps: list[tuple[Compiled, Callable[[Any, Any], bool]]] = []
        left_node = node.first
        for link in node.rest:
            steps.append((self.build(link.operand), self.test(link, left_node)))
            left_node = link.operand
        if len(steps) == 1:  # the usual ``a <= b``: no loop
            ((second, test),) = steps
            return lambda lookup: test(first(lookup), second(lookup))

        def chain(lookup: Lookup) -> Any:
            left = first(lookup)
            for operand, test in steps:
                right = operand(lookup)
                if not test(left, right):
                    return False  # short-circuit like Python's chained comparisons
                left = right
            return True

        return chain

    def test(self, link: Operation, left_node: Node) -> Callable[[Any, Any], bool]:
        """One comparison, returning true/false as the walker's ``compare`` does."""
        rules, op = self.rules, link.op
        if op in ("==", "!="):
            equal = op == "=="

            def equality(left: Any, right: Any) -> bool:
                return same(left, right) is equal

            return equality
        fast = _FAST_ORDER.get(op)
        if fast is None:  # 'in' and 'not in'
            return lambda left, right: rules.compare(link, left, left_node, right)

        def order(left: Any, right: Any) -> bool:
            if type(left) in _NUMBER_TYPES and type(right) in _NUMBER_TYPES:
                return fast(left, right)
            return rules.compare(link, left, left_node, right)

        return order

    def arith(self, node: Arith) -> Compiled:
        first, first_node, rules = self.build(node.first), node.first, self.rules
        steps = tuple(
            (self.build(link.operand), link, _FAST_ARITH.get(link.op)) for link in node.rest
        )

        def combine(lookup: Lookup) -> Any:
            result = first(lookup)
            for operand, link, fast in steps:
                right = operand(lookup)
                plain = None if fast is None else _plain(fast, result, right)
                # the walker names the chain's first operand for a wrong left type
                result = rules.arith(link, result, first_node, right) if plain is None else plain
            return result

        return combine

    def call(self, node: Call) -> Compiled:
        args, rules = tuple(self.build(arg) for arg in node.args), self.rules
        return lambda lookup: rules.call(node, [arg(lookup) for arg in args])


def _plain(fast: Callable[[Any, Any], Any], left: Any, right: Any) -> Any:
    """``left op right`` for plain numbers whose result needs no check, else None."""
    kind_left, kind_right = type(left), type(right)
    if kind_left is float and kind_right is float:
        return fast(left, right)  # float arithmetic raises nothing: inf and nan are values
    if kind_left is int and kind_right is int:
        result = fast(left, right)
        return result if result.bit_length() <= MAX_INT_BITS else None
    if kind_left is float and kind_right is int and right.bit_length() <= _FLOAT_SAFE_BITS:
        return fast(left, right)
    if kind_left is int and kind_right is float and left.bit_length() <= _FLOAT_SAFE_BITS:
        return fast(left, right)
    return None


def _constant(value: Any) -> Compiled:
    return lambda lookup: value
