"""The small, safe expression language shared by plans and invariants.

Plans are data, so an expression is parsed by a tokenizer and a Pratt parser
into a tree of frozen dataclasses, whose meaning ``hil.expression_eval`` gives
by walking it; ``hil.expression_compile`` turns the tree into closures once, and
those evaluate it. Nothing here calls ``eval``: there are no
attribute accesses, imports, loops or assignments, and a source is limited to
``MAX_LENGTH`` characters and ``MAX_DEPTH`` levels of nesting, so parsing and
evaluating take bounded time. In a YAML value an expression is written
``${ ... }`` (see ``is_expression`` and ``unwrap``).

Grammar, loosest binding first::

    expr     := or
    or       := and ("or" and)*
    and      := not ("and" not)*
    not      := "not" not | compare
    compare  := sum (("==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not" "in") sum)*
    sum      := product (("+" | "-") product)*
    product  := unary (("*" | "/" | "%") unary)*
    unary    := ("-" | "+") unary | primary
    primary  := NUMBER | STRING | "true" | "false" | NAME
              | FUNCTION "(" expr ("," expr)* ")" | "[" [expr ("," expr)*] "]" | "(" expr ")"

Comparisons chain as in Python: ``0 <= x < 10`` means ``0 <= x and x < 10``.
``FUNCTION`` is one of ``abs``, ``min``, ``max``, ``round``.

Numbers: ``1``, ``1.5``, ``.5``, ``1e3``, ``2.5E-3``. Strings: ``"..."`` or
``'...'``; the only escapes are ``\\"``, ``\\'`` and ``\\\\``.

Names (plan parameters, saved values, signals, capabilities) are segments
joined by ``.``; a segment is ``[A-Za-z_][A-Za-z0-9_]*`` and may contain single
hyphens, each between a letter or digit and a *letter*, because MIoT property
names have them: ``smart_plug.power-consumption.electric-power`` is one name.
So subtraction needs a space or a digit after the minus: ``a - b`` and ``a-1``
subtract, ``a-b`` is the name ``a-b``. The keywords ``and or not in true
false`` are reserved as whole names only.

Columns in errors are 1-based character positions in the expression text.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from hil import expression_eval as tree
from hil.errors import did_you_mean
from hil.expression_compile import Compiled, compile_tree
from hil.expression_eval import ExpressionError, Node
from hil.expression_tokens import Token, fail, tokenize

__all__ = [
    "Expression",
    "ExpressionError",
    "Node",
    "is_expression",
    "parse",
    "parse_shared",
    "unwrap",
]

MAX_LENGTH = 2000
MAX_DEPTH = 64
# name -> (fewest, most) arguments; None means no upper bound
FUNCTIONS = {"abs": (1, 1), "min": (2, None), "max": (2, None), "round": (1, 2)}
COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">=", "in", "not in"})

_CALLABLE = "only abs, min, max, round can be called"
# binding powers of the infix operators (and of prefix 'not' and '-')
_OR, _AND, _NOT, _CMP, _SUM, _PRODUCT, _UNARY = range(1, 8)
_POWER = {"or": _OR, "and": _AND, "+": _SUM, "-": _SUM, "*": _PRODUCT, "/": _PRODUCT, "%": _PRODUCT}
_POWER.update(dict.fromkeys(COMPARISONS, _CMP))


@dataclass(frozen=True)
class Expression:
    """A parsed expression: its source text and its tree."""

    source: str
    root: Node

    def names(self) -> list[tuple[str, int]]:
        """Every name referenced, with its column, in source order (duplicates kept)."""
        return list(self._names)

    @cached_property
    def _names(self) -> tuple[tuple[str, int], ...]:
        # a walk of the tree, asked for by every instance of every plan that uses it
        return tuple(tree.names(self.root))

    def evaluate(self, lookup: Callable[[str], Any]) -> Any:
        """The value, reading names through ``lookup`` (which raises ``KeyError``)."""
        return self.compiled(lookup)

    @cached_property
    def compiled(self) -> Compiled:
        """The tree as closures, built on first use: an invariant is judged per frame."""
        return compile_tree(self.root, self.source)

    def __getstate__(self) -> dict[str, Any]:
        # closures do not pickle (plans cross pytest-xdist workers): rebuilt on first use
        return {k: v for k, v in self.__dict__.items() if k != "compiled"}


# Plans repeat their expressions (every instance of a plan, every plan a device type's
# envelopes watch); an Expression is immutable (frozen, its names and compiled form pure
# functions of its tree), so one parse per text serves them all. Errors are not cached:
# a bad text raises again, with the caller's location.
@functools.lru_cache(maxsize=4096)
def parse_shared(source: str) -> Expression:
    """``parse``, once per text: the same Expression for every caller of the same text."""
    return parse(source)


def parse(source: str) -> Expression:
    """Parse ``source`` or raise ``ExpressionError`` naming the column."""
    if len(source) > MAX_LENGTH:
        raise ExpressionError(
            f"expression is {len(source)} characters long; the limit is {MAX_LENGTH}",
            expression=source,
            column=MAX_LENGTH + 1,
        )
    try:
        return Expression(source, _Parser(source, tokenize(source)).parse())
    except RecursionError as err:  # a safety net; MAX_DEPTH keeps the stack shallow
        raise ExpressionError("expression nested too deeply", expression=source, column=1) from err


def is_expression(value: object) -> bool:
    """True for a string written ``${ ... }``, the plan syntax for an expression."""
    if not isinstance(value, str):
        return False
    text = value.strip()
    return text.startswith("${") and text.endswith("}")


def unwrap(value: str) -> tuple[str, int]:
    """``"${ a + 1 }"`` -> ``("a + 1", 3)``: the inner text and its offset in ``value``.

    Add the offset to a column from ``parse`` to get the column in ``value``.
    """
    if not is_expression(value):
        raise ExpressionError("not an expression; write it as ${ ... }", expression=value, column=1)
    start = value.index("${") + 2
    end = value.rindex("}")
    inner = value[start:end]
    stripped = inner.strip()
    offset = start + (len(inner) - len(inner.lstrip())) if stripped else start
    return stripped, offset


# ---------------------------------------------------------------- parser


class _Parser:
    """Precedence climbing; chains of one precedence become one n-ary node."""

    def __init__(self, source: str, tokens: list[Token]) -> None:
        self.source = source
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    def parse(self) -> Node:
        if self.peek().kind == "end":
            raise self.fail(1, "empty expression")
        node = self.expression(0)
        token = self.peek()
        if token.text in (")", "]") and token.kind == "op":
            raise self.fail(token.column, f"unmatched {token.text!r}")
        if token.kind != "end":
            raise self.fail(
                token.column, f"unexpected {token.describe()}; expected an operator or the end"
            )
        return node

    def fail(self, column: int, reason: str) -> ExpressionError:
        return fail(self.source, column, reason)

    def peek(self) -> Token:
        return self.tokens[self.pos]

    def advance(self) -> Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def enter(self, token: Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(
                token.column,
                f"expression nested too deeply (more than {MAX_DEPTH} levels of "
                "parentheses, brackets, calls and unary operators)",
            )

    def infix(self) -> str | None:
        token = self.peek()
        if token.kind == "keyword" and token.text == "not":
            following = self.tokens[self.pos + 1]
            return "not in" if following.kind == "keyword" and following.text == "in" else None
        if token.kind in ("op", "keyword") and token.text in _POWER:
            return token.text
        return None

    def expression(self, min_power: int) -> Node:
        left = self.prefix(min_power)
        while True:
            token = self.peek()
            if token.kind == "op" and token.text == "(":
                raise self.fail(token.column, f"unexpected '('; {_CALLABLE}")
            if token.kind == "op" and token.text == "[":
                raise self.fail(token.column, "unexpected '['; indexing is not supported")
            op = self.infix()
            if op is None or _POWER[op] < min_power:
                return left
            left = self.chain(left, _POWER[op])

    def chain(self, first: Node, power: int) -> Node:
        links: list[tree.Operation] = []
        while (op := self.infix()) is not None and _POWER[op] == power:
            token = self.advance()
            if op == "not in":
                self.advance()
            links.append(tree.Operation(op, token.column, self.expression(power + 1)))
        if power in (_OR, _AND):
            return tree.BoolOp(
                links[0].op, (first, *(link.operand for link in links)), first.column
            )
        if power == _CMP:
            return tree.Compare(first, tuple(links), first.column)
        return tree.Arith(first, tuple(links), first.column)

    def prefix(self, min_power: int) -> Node:
        token = self.advance()
        if token.kind in ("number", "string"):
            return tree.Literal(token.value, token.column)
        if token.kind == "name":
            if self.peek().kind == "op" and self.peek().text == "(":
                return self.call(token)
            return tree.Name(token.text, token.column)
        if token.kind == "keyword" and token.text in ("true", "false"):
            return tree.Literal(token.text == "true", token.column)
        if token.kind == "keyword" and token.text == "not":
            if min_power > _NOT:
                raise self.fail(token.column, "put 'not …' in parentheses here")
            return self.unary(token, _NOT)
        if token.kind == "op" and token.text in ("-", "+"):
            return self.unary(token, _UNARY)
        if token.kind == "op" and token.text == "(":
            self.enter(token)
            inner = self.expression(0)
            self.close(")", token)
            self.depth -= 1
            return inner
        if token.kind == "op" and token.text == "[":
            self.enter(token)
            items = self.items("]", token)
            self.depth -= 1
            return tree.ListLiteral(items, token.column)
        before = self.tokens[self.pos - 2] if self.pos >= 2 else None
        after = f" after {before.text!r}" if before is not None else ""
        raise self.fail(token.column, f"expected a value{after}, got {token.describe()}")

    def unary(self, token: Token, power: int) -> Node:
        self.enter(token)
        operand = self.expression(power)
        self.depth -= 1
        return tree.Unary(token.text, operand, token.column)

    def call(self, name: Token) -> Node:
        if "." in name.text:
            raise self.fail(name.column, _CALLABLE)
        if name.text not in FUNCTIONS:
            hint = did_you_mean(name.text, FUNCTIONS)
            raise self.fail(name.column, f"unknown function {name.text!r}; {hint}")
        opening = self.advance()
        self.enter(opening)
        args = self.items(")", opening)
        self.depth -= 1
        fewest, most = FUNCTIONS[name.text]
        if len(args) < fewest or (most is not None and len(args) > most):
            if most is None:
                wanted = f"at least {fewest} arguments"
            elif most == fewest:
                wanted = f"{fewest} argument" + ("" if fewest == 1 else "s")
            else:
                wanted = f"{fewest} or {most} arguments"
            raise self.fail(name.column, f"{name.text}() takes {wanted}, got {len(args)}")
        return tree.Call(name.text, args, name.column)

    def items(self, closing: str, opening: Token) -> tuple[Node, ...]:
        found: list[Node] = []
        if self.peek().kind == "op" and self.peek().text == closing:
            self.advance()
            return ()
        while True:
            found.append(self.expression(0))
            if self.peek().kind == "op" and self.peek().text == ",":
                self.advance()
                continue
            self.close(closing, opening)
            return tuple(found)

    def close(self, closing: str, opening: Token) -> None:
        token = self.advance()
        if token.kind == "op" and token.text == closing:
            return
        if token.kind == "end":
            raise self.fail(opening.column, f"{opening.text!r} is never closed")
        raise self.fail(
            token.column,
            f"expected {closing!r} to close {opening.text!r} at column {opening.column}, "
            f"got {token.describe()}",
        )
