"""Weaving the render budget into a compiled body, where Jinja has no hook of its own.

- Loops count their items, one step each (`Counted`); loop bodies and macros charge a step
  plus their literal text's share each time they run (`tick`).
- `~` joins only text-like values, once they are known to fit (`concat`).
- What a macro, `{% set %}` block, filter block or recursive loop writes goes into a
  `Buffer` that stops being built once it passes `MAX_SIZE`, as the main output does:
  steps alone would let such a block grow to millions of characters before they ran out.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.visitor import NodeTransformer

from .render_budget import (
    CHARS_PER_STEP,
    MAX_SIZE,
    TOO_BIG,
    Counted,
    RenderLimit,
    charge,
    charge_chars,
    need,
    text_only,
)


def counted(items: Any) -> Counted:
    return Counted(items)


def tick(steps: int) -> str:
    """Charged where a loop body or macro begins: one step plus its literal text's share."""
    charge(steps)
    return ""


def concat(*parts: Any) -> str:
    """`a ~ b`: Jinja's own join, once the parts are known to fit."""
    texts = [str(text_only(part)) for part in parts]
    total = sum(map(len, texts))
    need(total)
    charge_chars(total)
    return "".join(texts)


class Buffer(list):  # type: ignore[type-arg]
    """Where a block writes its text (see the module's docstring); its pieces are text."""

    __slots__ = ("written",)

    def __init__(self) -> None:
        super().__init__()
        self.written = 0

    def _grow(self, chars: int) -> None:
        self.written += chars
        if self.written > MAX_SIZE:
            raise RenderLimit(TOO_BIG)

    def append(self, piece: str) -> None:
        self._grow(len(piece))
        super().append(piece)

    def extend(self, pieces: Iterable[str]) -> None:
        for piece in pieces:
            self.append(piece)


def weave(tree: nodes.Template) -> None:
    """Count the work of a parsed body where Jinja has no hook: see `_Weave`."""
    _Weave().visit(tree)


class _Weave(NodeTransformer):
    """Weave the budget into the tree: loops count their items, loop bodies and macros
    charge a step plus their literal text's share each time they run, and `~` checks the
    size of what it joins."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = _call("counted", [node.iter], node.lineno)
        node.body.insert(0, _tick(node.body, node.lineno))
        return node

    def visit_Macro(self, node: nodes.Macro) -> nodes.Node:
        self.generic_visit(node)
        node.body.insert(0, _tick(node.body, node.lineno))
        return node

    visit_CallBlock = visit_Macro

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _call("concat", node.nodes, node.lineno)


def _call(name: str, args: list[nodes.Expr], lineno: int) -> nodes.Call:
    target = nodes.ImportedName(f"{__name__}.{name}", lineno=lineno)
    return nodes.Call(target, list(args), [], None, None, lineno=lineno)


def _tick(body: list[nodes.Node], lineno: int) -> nodes.Output:
    # What one pass over the body costs besides its counted calls: its literal text, and
    # its expressions (comparisons, attribute look-ups), which no hook counts.
    literal = sum(len(data.data) for node in body for data in node.find_all(nodes.TemplateData))
    exprs = sum(1 for node in body for _ in node.find_all(nodes.Expr))
    steps = 1 + literal // CHARS_PER_STEP + exprs // 4
    return nodes.Output([_call("tick", [nodes.Const(steps, lineno=lineno)], lineno)], lineno=lineno)


class WovenCodeGenerator(CodeGenerator):
    """Jinja's code, with the calls `weave` adds made directly: the sandbox's `call` (its
    safety checks, our counting) is for what a body calls, and costs ~2 µs a call. Every
    block's buffer is a `Buffer`, which the environment offers as `bounded_buffer`."""

    def buffer(self, frame: Frame) -> None:
        frame.buffer = self.temporary_identifier()
        self.writeline(f"{frame.buffer} = environment.bounded_buffer()")

    def visit_Call(self, node: nodes.Call, frame: Frame, forward_caller: bool = False) -> None:
        target = node.node
        if not (isinstance(target, nodes.ImportedName) and target.importname.startswith(_OURS)):
            super().visit_Call(node, frame, forward_caller=forward_caller)
            return
        self.visit(target, frame)
        self.write("(")
        for i, arg in enumerate(node.args):
            if i:
                self.write(", ")
            self.visit(arg, frame)
        self.write(")")


_OURS = f"{__name__}."
