"""Names for the tensors a lesson computes: the lesson's own words in rules and ledgers.

A tensor bound to a name in scope is called by that name (``w1``, ``model.0.weight``).
One with no name is called by the source expression that computed it (``x.mm(w1)``):
the line tracer knows the lesson frame that called the op, and the position of the
instruction that frame is running (``co_positions``) is that of the expression.
An op run inside a module (``model(x)`` runs ``Linear`` and ``ReLU``) is called after
the submodule and its input (``model.0(x)``).
"""

from __future__ import annotations

import ast
import re
import sys
from functools import lru_cache
from types import CodeType, FrameType
from typing import Any, NamedTuple

import torch

__all__ = [
    "Expression",
    "ExpressionNames",
    "TensorNames",
    "grad_name",
    "module_paths",
    "modules_between",
    "operand",
    "storage_key",
]

_SIMPLE = re.compile(r"[\w.]+(\[[\w, ]+\])?")
_IDENTIFIER = re.compile(r"\w+")
_MAX_LABEL = 60


def grad_name(name: str) -> str:
    """What the lesson would call the gradient of ``name``: ``grad_w2``, ``grad[x.mm(w1)]``."""
    return f"grad_{name}" if _IDENTIFIER.fullmatch(name) else f"grad[{name}]"


@lru_cache(maxsize=4096)
def operand(name: str) -> str:
    """``name`` as an operand of a product: parenthesised unless it is one term."""
    return name if _SIMPLE.fullmatch(name) or _is_call_chain(name) else f"({name})"


def _is_call_chain(text: str) -> bool:
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError:
        return False
    return isinstance(node, ast.Call | ast.Attribute | ast.Name | ast.Subscript)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_LABEL else text[: _MAX_LABEL - 1] + "…"


class Expression(NamedTuple):
    """A call or operator expression of the lesson: its label and its operands' texts."""

    name: str  # the name it is assigned to, or its source text
    receiver: str | None  # a method call's receiver (``x`` of ``x.mm(w1)``)
    args: tuple[str, ...]  # positional arguments (both operands of ``a - b``)

    def operands(self, method: bool) -> tuple[str, ...]:
        """The texts of the op's tensor arguments in order: a method's receiver first."""
        if method and self.receiver is not None:
            return (self.receiver, *self.args)
        return self.args


class ExpressionNames:
    """The label of every call or operator expression of a lesson file, by position.

    An expression that is the whole right-hand side of ``name = …`` is labelled
    ``name``; any other by its source text.
    """

    def __init__(self, source: str) -> None:
        tree = ast.parse(source)
        assigned: dict[tuple[int, int, int, int], str] = {}
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Assign)
                and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name)
            ):
                assigned[_position(node.value)] = node.targets[0].id
        self._expressions: dict[tuple[int, int, int, int], Expression] = {}
        for node in ast.walk(tree):
            receiver = None
            if isinstance(node, ast.Call):
                args = [ast.unparse(a) for a in node.args]
                if isinstance(node.func, ast.Attribute):
                    receiver = _short(ast.unparse(node.func.value))
            elif isinstance(node, ast.BinOp):
                args = [ast.unparse(node.left), ast.unparse(node.right)]
            elif isinstance(node, ast.UnaryOp):
                args = [ast.unparse(node.operand)]
            elif isinstance(node, ast.Subscript):
                args = [ast.unparse(node.value)]
            else:
                continue
            position = _position(node)
            text = assigned.get(position) or ast.get_source_segment(source, node) or ""
            self._expressions[position] = Expression(
                _short(text), receiver, tuple(map(_short, args))
            )
        self._positions: dict[CodeType, list[Any]] = {}

    def at(self, frame: FrameType) -> Expression | None:
        """The expression ``frame`` (a lesson frame) is evaluating now."""
        code = frame.f_code
        positions = self._positions.get(code)
        if positions is None:
            positions = self._positions[code] = list(code.co_positions())
        index = frame.f_lasti // 2
        return self._expressions.get(positions[index]) if index < len(positions) else None


def _position(node: ast.AST) -> tuple[int, int, int, int]:
    return (
        getattr(node, "lineno", 0),
        getattr(node, "end_lineno", 0),
        getattr(node, "col_offset", 0),
        getattr(node, "end_col_offset", 0),
    )


def modules_between(lesson_frame: FrameType) -> tuple[Any, Any, Any]:
    """The innermost and outermost ``nn.Module`` whose ``forward`` runs between the
    caller and ``lesson_frame``, and the innermost one's first argument (all None when
    the lesson frame called the op itself)."""
    frame: FrameType | None = sys._getframe(1)
    innermost = outermost = first = None
    while frame is not None and frame is not lesson_frame:
        if frame.f_code.co_name == "forward":
            local = frame.f_locals
            module = local.get("self")
            if isinstance(module, torch.nn.Module):
                if innermost is None:
                    innermost = module
                    names = frame.f_code.co_varnames
                    first = local.get(names[1]) if len(names) > 1 else None
                outermost = module
        frame = frame.f_back
    return innermost, outermost, first


class TensorNames:
    """Who is who at one moment: scope names of tensors and of the nodes that made them.

    Tensors are matched by identity, and by their storage and layout: a tensor saved
    as a node's own output comes back from the node as a new object on the same memory.
    """

    def __init__(self, tensors: dict[str, Any]) -> None:
        self._by_id: dict[int, str] = {}
        self._by_storage: dict[tuple[Any, ...], str] = {}
        self._by_node: dict[Any, str] = {}
        self._node_by_name: dict[str, Any] = {}
        self._keep = list(tensors.values())  # ids stay theirs while this lives
        for name, tensor in tensors.items():
            if not isinstance(tensor, torch.Tensor):
                continue
            self._by_id.setdefault(id(tensor), name)
            self._by_storage.setdefault(storage_key(tensor), name)
            if tensor.grad_fn is not None:
                self._by_node.setdefault(tensor.grad_fn, name)
                self._node_by_name[name] = tensor.grad_fn

    def of_tensor(self, tensor: Any) -> str | None:
        """The scope name of ``tensor`` (None: it has none)."""
        if not isinstance(tensor, torch.Tensor):
            return None
        name = self._by_id.get(id(tensor))
        if name is None and not torch._C._functorch.is_functorch_wrapped_tensor(tensor):
            name = self._by_storage.get(storage_key(tensor))
        return name

    def node_of_name(self, name: str) -> Any:
        """The node that made the tensor now called ``name`` (None: none, or no such name)."""
        return self._node_by_name.get(name)

    def of_node(self, node: Any) -> str | None:
        """The scope name of the tensor ``node`` made (None: none in scope)."""
        return self._by_node.get(node)


def storage_key(tensor: torch.Tensor) -> tuple[Any, ...]:
    """Where a tensor's values live: the same for every tensor object over them."""
    if torch._C._functorch.is_functorch_wrapped_tensor(tensor):
        return (id(tensor),)
    return (tensor.data_ptr(), tuple(tensor.shape), tuple(tensor.stride()), tensor.dtype)


def module_paths(scope: dict[str, Any]) -> dict[str, torch.nn.Module]:
    """Every module reachable from the scope's modules, by its dotted path."""
    found: dict[str, torch.nn.Module] = {}
    for name, value in scope.items():
        if isinstance(value, torch.nn.Module) and not name.startswith("_"):
            for sub, module in value.named_modules(prefix=name):
                found.setdefault(sub, module)
    return found
