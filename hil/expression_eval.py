"""The expression tree, its error type, and what a tree evaluates to.

``hil.expressions`` parses text into these nodes; this module gives them
meaning. Types are strict so a plan's mistake shows as an error, not as a
surprising value: bools are not numbers, strings only concatenate with
strings, ``and``/``or``/``not`` need true/false, ``in`` needs a list.
``==`` and ``!=`` work on anything (``1 == true`` is false). ``/`` always
gives a float; ``%`` follows Python (the result has the divisor's sign).
Every failure is an ``ExpressionError`` naming the column of the part at
fault. ``lookup(name)`` returns a number, string, bool or a flat list/tuple of
those, or raises ``KeyError`` (whose argument, if a sentence rather than the
key, is added to the message as a hint); other exceptions it raises pass
through unchanged.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hil.errors import HilError

# Integers may not outgrow this many bits: keeps arithmetic and messages cheap
# (and under Python's int-to-str limit).
MAX_INT_BITS = 8192
MAX_ROUND_DIGITS = 400


class ExpressionError(HilError, ValueError):
    """An expression does not parse or cannot be evaluated; names the column."""

    def __init__(self, reason: str, *, expression: str, column: int) -> None:
        message = f"column {column}: {reason} (in: {_excerpt(expression, column)})"
        HilError.__init__(self, message, expression=expression, column=column, reason=reason)


def _excerpt(expression: str, column: int, width: int = 60) -> str:
    if len(expression) <= 2 * width:
        return expression
    start = max(0, column - 1 - width)
    end = min(len(expression), column - 1 + width)
    head = "…" if start > 0 else ""
    tail = "…" if end < len(expression) else ""
    return f"{head}{expression[start:end]}{tail}"


# ---------------------------------------------------------------- the tree


@dataclass(frozen=True)
class Literal:
    value: bool | int | float | str
    column: int


@dataclass(frozen=True)
class Name:
    name: str
    column: int


@dataclass(frozen=True)
class ListLiteral:
    items: tuple[Node, ...]
    column: int


@dataclass(frozen=True)
class Unary:
    op: str  # "-", "+" or "not"
    operand: Node
    column: int


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" or "or"
    operands: tuple[Node, ...]
    column: int


@dataclass(frozen=True)
class Operation:
    """One ``op operand`` link of a comparison or arithmetic chain."""

    op: str
    column: int  # of the operator
    operand: Node


@dataclass(frozen=True)
class Compare:
    first: Node
    rest: tuple[Operation, ...]
    column: int


@dataclass(frozen=True)
class Arith:
    first: Node
    rest: tuple[Operation, ...]
    column: int


@dataclass(frozen=True)
class Call:
    function: str
    args: tuple[Node, ...]
    column: int


Node = Literal | Name | ListLiteral | Unary | BoolOp | Compare | Arith | Call


def children(node: Node) -> tuple[Node, ...]:
    """The direct subexpressions of ``node``, in source order."""
    if isinstance(node, ListLiteral):
        return node.items
    if isinstance(node, Unary):
        return (node.operand,)
    if isinstance(node, BoolOp):
        return node.operands
    if isinstance(node, Compare | Arith):
        return (node.first, *(link.operand for link in node.rest))
    if isinstance(node, Call):
        return node.args
    return ()


def names(root: Node) -> list[tuple[str, int]]:
    """Every name under ``root`` with its column, in source order."""
    found: list[tuple[str, int]] = []
    stack: list[Node] = [root]
    while stack:  # no recursion: a tree may be deep
        node = stack.pop()
        if isinstance(node, Name):
            found.append((node.name, node.column))
        stack.extend(reversed(children(node)))
    return found


# ---------------------------------------------------------------- evaluation

_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "%": operator.mod,
}


def evaluate(root: Node, source: str, lookup: Callable[[str], Any]) -> Any:
    """The value of the tree ``root`` parsed from ``source``."""
    try:
        return _Evaluator(source, lookup).value(root)
    except RecursionError as err:  # a safety net; parse() bounds the depth
        raise ExpressionError(
            "expression nested too deeply to evaluate", expression=source, column=1
        ) from err


def is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def describe(value: object) -> str:
    """``3 (number)``, ``'on' (string)``, ``true (true/false)``, ``[1, 2] (list)``."""
    if isinstance(value, bool):
        kind = "true/false"
    elif is_number(value):
        kind = "number"
    elif isinstance(value, str):
        kind = "string"
    elif isinstance(value, list | tuple):
        kind = "list"
    else:
        kind = type(value).__name__
    return f"{show(value)} ({kind})"


def show(value: object, limit: int = 40) -> str:
    """``value`` written the way an expression would write it, shortened."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, list | tuple):
        text = "[" + ", ".join(show(item, limit) for item in value[:10]) + "]"
    elif isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        text = f"a {value.bit_length()}-bit integer"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def same(left: object, right: object) -> bool:
    """``==`` without Python's ``True == 1``."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, list | tuple) or isinstance(right, list | tuple):
        return (
            isinstance(left, list | tuple)
            and isinstance(right, list | tuple)
            and len(left) == len(right)
            and all(same(a, b) for a, b in zip(left, right, strict=True))
        )
    return bool(left == right)


def _usable(value: object, nested: bool = False) -> bool:
    if isinstance(value, bool | float | str):
        return True
    if isinstance(value, int):
        return value.bit_length() <= MAX_INT_BITS
    if isinstance(value, list | tuple) and not nested:
        return all(_usable(item, nested=True) for item in value)
    return False


class _Evaluator:
    def __init__(self, source: str, lookup: Callable[[str], Any]) -> None:
        self.source = source
        self.lookup = lookup

    def fail(self, column: int, reason: str) -> ExpressionError:
        return ExpressionError(reason, expression=self.source, column=column)

    def value(self, node: Node) -> Any:
        # One frame per tree level: subexpressions recurse through here only.
        if isinstance(node, Literal):
            return node.value
        if isinstance(node, Name):
            return self.name(node)
        if isinstance(node, ListLiteral):
            return [self.value(item) for item in node.items]
        if isinstance(node, Unary):
            operand = self.value(node.operand)
            if node.op == "not":
                return not self.boolean(operand, node.operand, "'not'")
            self.unary_operand(node, operand)
            return -operand if node.op == "-" else operand
        if isinstance(node, BoolOp):
            stop = node.op == "or"  # the value that decides early
            for operand in node.operands:
                if self.boolean(self.value(operand), operand, repr(node.op)) is stop:
                    return stop
            return not stop
        if isinstance(node, Compare):
            left, left_node = self.value(node.first), node.first
            for link in node.rest:
                right = self.value(link.operand)
                if not self.compare(link, left, left_node, right):
                    return False  # short-circuit like Python's chained comparisons
                left, left_node = right, link.operand
            return True
        if isinstance(node, Arith):
            result = self.value(node.first)
            for link in node.rest:
                result = self.arith(link, result, node.first, self.value(link.operand))
            return result
        return self.call(node, [self.value(arg) for arg in node.args])

    def name(self, node: Name) -> Any:
        try:
            value = self.lookup(node.name)
        except KeyError as err:
            raise self.unknown(node, err) from err
        if not _usable(value):
            raise self.unusable(node, value)
        return value

    def unknown(self, node: Name, err: KeyError) -> ExpressionError:
        # a KeyError carrying a sentence (not just the key) is a hint to pass on
        hint = err.args[0] if err.args and isinstance(err.args[0], str) else ""
        extra = f"; {hint}" if " " in hint else ""
        return self.fail(node.column, f"unknown name {node.name!r}{extra}")

    def unusable(self, node: Name, value: Any) -> ExpressionError:
        return self.fail(
            node.column,
            f"{node.name!r} is {describe(value)}, which expressions cannot use "
            "(they use numbers, strings, true/false and lists of those)",
        )

    def unary_operand(self, node: Unary, operand: Any) -> None:
        if not is_number(operand):
            raise self.fail(
                node.operand.column,
                f"unary {node.op!r} needs a number, got {describe(operand)}",
            )

    def boolean(self, value: Any, node: Node, what: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(node.column, f"{what} needs true/false, got {describe(value)}")
        return value

    def compare(self, link: Operation, left: Any, left_node: Node, right: Any) -> bool:
        op = link.op
        if op in ("==", "!="):
            return same(left, right) is (op == "==")
        if op in ("in", "not in"):
            if not isinstance(right, list | tuple):
                raise self.fail(
                    link.operand.column, f"{op!r} needs a list on the right, got {describe(right)}"
                )
            return any(same(left, item) for item in right) is (op == "in")
        for value, node in ((left, left_node), (right, link.operand)):
            if not (is_number(value) or isinstance(value, str)):
                raise self.fail(
                    node.column, f"{op!r} needs two numbers or two strings, got {describe(value)}"
                )
        if is_number(left) != is_number(right):
            raise self.fail(
                link.column, f"{op!r} cannot compare {describe(left)} with {describe(right)}"
            )
        return _ORDER[op](left, right)

    def arith(self, link: Operation, left: Any, left_node: Node, right: Any) -> Any:
        op = link.op
        if op == "+" and isinstance(left, str):
            if not isinstance(right, str):
                raise self.fail(
                    link.operand.column, f"'+' after a string needs a string, got {describe(right)}"
                )
            return left + right
        for value, node in ((left, left_node), (right, link.operand)):
            if not is_number(value):
                raise self.fail(node.column, f"{op!r} needs numbers, got {describe(value)}")
        if op in ("/", "%") and right == 0:
            raise self.fail(link.column, "division by zero" if op == "/" else "modulo by zero")
        return self.checked(link.column, _ARITH[op], left, right)

    def checked(self, column: int, function: Callable[..., Any], *args: Any) -> Any:
        try:
            result = function(*args)
        except (OverflowError, ValueError, ZeroDivisionError) as err:
            raise self.fail(column, f"cannot compute this: {err}") from err
        if isinstance(result, int) and result.bit_length() > MAX_INT_BITS:
            raise self.fail(column, f"integer result too large (over {MAX_INT_BITS} bits)")
        return result

    def call(self, node: Call, args: Sequence[Any]) -> Any:
        checked = args[:1] if node.function == "round" else args
        for value, arg in zip(checked, node.args[: len(checked)], strict=True):
            if not is_number(value):
                raise self.fail(
                    arg.column, f"{node.function}() needs numbers, got {describe(value)}"
                )
        if node.function == "abs":
            return self.checked(node.column, abs, args[0])
        if node.function in ("min", "max"):
            return min(args) if node.function == "min" else max(args)
        if len(args) == 2:
            digits = args[1]
            if not isinstance(digits, int) or isinstance(digits, bool):
                raise self.fail(
                    node.args[1].column,
                    f"round()'s digits must be a whole number, got {describe(digits)}",
                )
            if abs(digits) > MAX_ROUND_DIGITS:
                raise self.fail(
                    node.args[1].column,
                    f"round()'s digits must be within ±{MAX_ROUND_DIGITS}, got {digits}",
                )
            return self.checked(node.column, round, args[0], digits)
        return self.checked(node.column, round, args[0])
