"""Ledgers: what one backward node did, in the lesson's names and with its numbers.

A node hook (``hook(grad_inputs, grad_outputs)``, PyTorch's names and alignment)
captures a :class:`Capture`: small copies of the gradients (a top-left block and a
norm) and of the few saved values one worked-out element needs. It keeps no
reference to a gradient: a kept reference makes ``AccumulateGrad`` copy the incoming
gradient instead of stealing it, which changes ``.grad``'s identity and version.

NOTE: hooks run on every backward call, most of them in a run nobody pauses in, so
a hook only copies; rules and worked examples are written from the copies when the
ledger is first asked for (:meth:`Capture.ledger`).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from math import isfinite
from typing import Any

import torch

from app.engine.naming import grad_name, operand

__all__ = ["BLOCK", "Capture", "GradCopy", "Names", "capture", "saved_input"]

BLOCK = 4  # previews are the top-left BLOCK × BLOCK block
_TERMS = 4  # terms of a sum written out (the block's width)


def _number(value: float) -> str:
    return f"{value:.6g}" if isfinite(value) else str(value)


def _finite(value: float) -> float | None:
    return value if isfinite(value) else None


def _block(t: torch.Tensor) -> torch.Tensor:
    """A copy of the top-left block, as a matrix (a row for a vector, 1 × 1 for a scalar)."""
    while t.dim() > 2:
        t = t[0]
    if t.dim() == 2:
        t = t[:BLOCK, :BLOCK]
    elif t.dim() == 1:
        t = t[:BLOCK].unsqueeze(0)
    else:
        t = t.reshape(1, 1)
    return t.detach().to(torch.float64, copy=True)


def _readable(t: Any) -> bool:
    return isinstance(t, torch.Tensor) and not torch._C._functorch.is_functorch_wrapped_tensor(t)


@dataclass
class GradCopy:
    """A gradient as a ledger keeps it: shape, norm, top-left block (copies), receiver."""

    shape: list[int]
    norm: torch.Tensor | None
    block: torch.Tensor | None
    to: str | None = None

    @classmethod
    def of(cls, t: Any, to: str | None = None) -> GradCopy | None:
        if not isinstance(t, torch.Tensor):
            return None
        if not _readable(t):
            return cls(list(t.shape), None, None, to)
        with torch.no_grad():
            # In the gradient's own precision (half ones in float32): several times
            # cheaper than in float64, and exact to display precision.
            low = t.dtype in (torch.float16, torch.bfloat16)
            norm = torch.linalg.vector_norm(t.detach(), dtype=torch.float32 if low else None)
            return cls(list(t.shape), norm, _block(t), to)

    def sent_to(self, to: str | None) -> GradCopy:
        """The same gradient, as received (``to`` None) or sent to ``to``."""
        return GradCopy(self.shape, self.norm, self.block, to)

    def at(self, row: int, col: int) -> float:
        """The block's element (row, col), clamped into the block."""
        assert self.block is not None
        return float(
            self.block[min(row, self.block.shape[0] - 1), min(col, self.block.shape[1] - 1)]
        )

    def json(self) -> dict[str, Any]:
        preview = (
            []
            if self.block is None
            else [[_finite(v) for v in row] for row in self.block.cpu().tolist()]
        )
        return {
            "shape": self.shape,
            "norm": None if self.norm is None else _finite(float(self.norm)),
            "preview": preview,
            "to": self.to,
        }


@dataclass
class Names:
    """The lesson's names for a node's output and its inputs (aligned with next_functions)."""

    out: str
    inputs: list[str]

    def input(self, index: int) -> str:
        return self.inputs[index] if index < len(self.inputs) else f"input{index}"


# Rules: per node type, the gradient each input receives, in the lesson's names. {g} is
# the gradient of the node's output, {out} the output, {a} {b} {c} inputs 0, 1, 2.
_FORMULAS: dict[str, tuple[str, ...]] = {
    "MmBackward0": ("{g} · {b}ᵀ", "{a}ᵀ · {g}"),
    "AddmmBackward0": ("Σ_rows {g}", "{g} · {c}ᵀ", "{b}ᵀ · {g}"),
    "TBackward0": ("{g}ᵀ",),
    "ClampBackward1": ("{g} · ({a} ≥ {min})",),
    "ReluBackward0": ("{g} · ({out} > 0)",),
    "PowBackward0": ("{g} · {exponent} · {a}^{exponent_1}",),
    "SubBackward0": ("{g}", "−{g}"),
    "SumBackward0": ("{g} · ones_like({a})",),
    "MseLossBackward0": ("2 · ({a} − {b}) · {g}", "−2 · ({a} − {b}) · {g}"),
    "MulBackward0": ("{g} · {b}", "{g} · {a}"),
    "SigmoidBackward0": ("{g} · {out} · (1 − {out})",),
}
_WORDS = {"Σ_rows": ("Σ over rows of", "按行求和 Σ")}
# Which saved tensor holds which symbol's values: inputs a, b, c (positions 0, 1, 2 of
# next_functions) and the output; they name inputs autograd does not differentiate
# (``x`` of ``x.mm(w1)``) and give one element's numbers.
_SAVED_SYMBOLS: dict[str, dict[str, str]] = {
    "MmBackward0": {"a": "self", "b": "mat2"},
    "AddmmBackward0": {"b": "mat1", "c": "mat2"},
    "ClampBackward1": {"a": "self"},
    "ReluBackward0": {"out": "result"},
    "PowBackward0": {"a": "self"},
    "MseLossBackward0": {"a": "self", "b": "target"},
    "MulBackward0": {"a": "self", "b": "other"},
    "SigmoidBackward0": {"out": "result"},
}
# Saved scalars a rule shows.
_SCALARS = {"ClampBackward1": ("min",), "PowBackward0": ("exponent",)}
# The input a worked-out example prefers (the first of these with a gradient).
_EXAMPLE_ORDER: dict[str, tuple[int, ...]] = {"AddmmBackward0": (2, 1, 0)}
# Sums of products: per node type and input, the saved factor and which of its
# vectors meets the gradient's: "row" (g · factorᵀ, row 0 of each) or "col" (factorᵀ · g).
_PRODUCTS: dict[tuple[str, int], tuple[str, str]] = {
    ("MmBackward0", 0): ("mat2", "row"),
    ("MmBackward0", 1): ("self", "col"),
    ("AddmmBackward0", 1): ("mat2", "row"),
    ("AddmmBackward0", 2): ("mat1", "col"),
}


def _saved(node: Any, attr: str) -> Any:
    try:
        return getattr(node, f"_saved_{attr}")
    except (AttributeError, RuntimeError):
        return None


def saved_input(node: Any, name: str, index: int) -> Any:
    """The tensor node ``node`` (of type ``name``) saved as its input ``index``, if any."""
    attr = _SAVED_SYMBOLS.get(name, {}).get("abc"[index] if index < 3 else "")
    return None if attr is None else _saved(node, attr)


def _scalar_text(value: Any) -> str:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    return _number(float(value)) if isinstance(value, int | float) else str(value)


@dataclass
class Capture:
    """What a node hook copied; :meth:`ledger` turns it into the contract's Ledger."""

    node_id: str
    name: str
    names: Names
    grad_outputs: list[GradCopy | None]
    grad_inputs: list[GradCopy | None]
    scalars: dict[str, str] = field(default_factory=dict)
    cursor: int = 0  # the node event's cursor (a replay there can look up any element)
    # The example's input and the small copies it needs (values of saved tensors).
    example_input: int | None = None
    operands: dict[str, torch.Tensor] = field(default_factory=dict)
    count: int = 0  # terms of the example's sum
    points: frozenset[str] = frozenset()  # operands that are 0-d tensors
    spot: tuple[int, int] = (0, 0)  # the example's element in the block (row, column)
    custom: tuple[str, int, int, str] | None = None  # class, first line, last line, code
    accumulate: tuple[GradCopy | None, GradCopy] | None = None
    contributions: list[tuple[str, GradCopy]] = field(default_factory=list)
    _json: dict[str, Any] | None = None

    def ledger(self) -> dict[str, Any]:
        """The contract's Ledger (built once, from the copies)."""
        if self._json is None:
            rule = self._rule()
            try:
                example = self._example()
            except (IndexError, KeyError, ValueError):
                example = None
            self._json = {
                "node_id": self.node_id,
                "name": self.name,
                "rule": {"en": rule[0], "zh": rule[1]},
                "grad_outputs": [g.json() if g else None for g in self.grad_outputs],
                "grad_inputs": [g.json() if g else None for g in self.grad_inputs],
                "accumulate": None
                if self.accumulate is None
                else {
                    "before": self.accumulate[0].json() if self.accumulate[0] else None,
                    "after": self.accumulate[1].json(),
                },
                "example": example,
            }
            if self.contributions:
                self._json["contributions"] = [
                    {"from": source, **grad.json()} for source, grad in self.contributions
                ]
            if self.custom is not None:
                self._json["source_lines"] = list(self.custom[1:3])
        return self._json

    # -- rules -------------------------------------------------------------

    def _symbols(self) -> dict[str, str]:
        symbols = {"g": grad_name(self.names.out), "out": operand(self.names.out)}
        for key, name in zip("abc", self.names.inputs, strict=False):
            symbols[key] = operand(name)
        symbols["min"] = self.scalars.get("min", "min")
        exponent = self.scalars.get("exponent", "p")
        symbols["exponent"] = exponent
        try:
            symbols["exponent_1"] = _number(float(exponent) - 1)
        except ValueError:
            symbols["exponent_1"] = f"{exponent} − 1"
        return symbols

    def _formulas(self) -> list[tuple[int, str]]:
        """(input, "grad_input = formula") for each input that receives a gradient."""
        symbols = self._symbols()
        out = []
        for index, formula in enumerate(_FORMULAS[self.name]):
            if index < len(self.grad_inputs) and self.grad_inputs[index] is not None:
                text = formula.format(**symbols).replace("^1", "").replace("ᵀᵀ", "")
                out.append((index, f"{grad_name(self.names.input(index))} = {text}"))
        return out

    def _rule(self) -> tuple[str, str]:
        if self.accumulate is not None:
            return self._accumulate_rule()
        if self.custom is not None:
            owner, first, last, code = self.custom
            return (
                f"The lesson's own {owner}.backward (lines {first}–{last}):\n{code}",
                f"本课自己写的 {owner}.backward（第 {first}–{last} 行）：\n{code}",
            )
        if self.name not in _FORMULAS:
            return (
                f"No rule known for {self.name}: here are the numbers.",
                f"没有 {self.name} 的已知规则：下面是实际的数值。",
            )
        en = zh = "; ".join(text for _, text in self._formulas())
        for word, (in_en, in_zh) in _WORDS.items():
            en, zh = en.replace(word, in_en), zh.replace(word, in_zh)
        return en, zh

    def _accumulate_rule(self) -> tuple[str, str]:
        assert self.accumulate is not None
        before = self.accumulate[0]
        leaf, g = self.names.out, grad_name(self.names.out)
        if before is None:
            en = f"{leaf}.grad = {g}  (.grad was None: it is set, not added to)"
            zh = f"{leaf}.grad = {g}（.grad 原为 None：直接赋值，而非累加）"
        else:
            en = zh = f"{leaf}.grad = {leaf}.grad + {g}"
            if before.norm is not None and float(before.norm) != 0:
                en += "  (.grad was not zeroed: this gradient adds to the last ones)"
                zh += "（.grad 没有清零：这次的梯度累加到之前的梯度上）"
        uses = self.contributions
        if uses:
            sources = " + ".join(source for source, _ in uses)
            en += f"; {g} is the sum of {len(uses)} uses: {sources}"
            zh += f"；{g} 是 {len(uses)} 处使用的梯度之和：{sources}"
        return en, zh

    # -- one element worked out ---------------------------------------------

    def _example(self) -> dict[str, Any] | None:
        if self.accumulate is not None:
            return self._accumulate_example()
        i = self.example_input
        if i is None:
            return None
        target, arrived = self.grad_inputs[i], self.grad_outputs[0]
        if target is None or target.block is None or arrived is None or arrived.block is None:
            return None
        r, c = self.spot
        index = [r, c][2 - min(len(target.shape), 2) :]
        at, back = _where(index), _where(index[::-1])
        lhs = grad_name(self.names.input(i)) + at
        g = grad_name(self.names.out)
        if self.custom is not None:
            text = (
                f"{self.custom[0]}.backward turned {g}{at} = {_number(arrived.at(r, c))} "
                f"into {lhs} = {{value}}"
            )
        elif self.name == "TBackward0":
            text = f"{lhs} = {g}{back} = {{value}}"
        elif self.name == "SumBackward0":
            text = f"{lhs} = {g} = {{value}}"
        elif (self.name, i) in _PRODUCTS or self.name == "AddmmBackward0":
            text = self._product_text(i, lhs, g, arrived)
        else:
            text = self._elementwise_text(i, lhs, at, arrived)
        value = target.at(r, c)
        return {
            "text": text.format(value=_number(value)),
            "value": _finite(value),
            "input": i,
            "index": index,
        }

    def _product_text(self, i: int, lhs: str, g: str, arrived: GradCopy) -> str:
        """``grad[r, c] = Σₖ u[k] · v[k]``: a row (or column) of g against one of a factor."""
        r, c = self.spot
        if (self.name, i) not in _PRODUCTS:  # Addmm's bias: a column of g summed
            terms = [arrived.at(k, c) for k in range(min(self.count, _TERMS))]
            shown = " + ".join(_number(t) for t in terms)
            more = f" + … ({self.count} terms)" if self.count > _TERMS else ""
            return f"{lhs} = Σₖ {g}[k, {c}] = {shown}{more} = {{value}}"
        _, side = _PRODUCTS[(self.name, i)]
        factor = self.operands["factor"].tolist()
        other = self.names.input({0: 1, 1: 0}[i] if self.name == "MmBackward0" else 3 - i)
        if side == "row":  # grad_A[r, c] = Σₖ g[r, k] · B[c, k]
            grads = [arrived.at(r, k) for k in range(len(factor))]
            pairs = zip(grads, factor, strict=True)
            names = f"{g}[{r}, k] · {other}[{c}, k]"
        else:  # grad_B[r, c] = Σₖ A[k, r] · g[k, c]
            grads = [arrived.at(k, c) for k in range(len(factor))]
            pairs = zip(factor, grads, strict=True)
            names = f"{other}[k, {r}] · {g}[k, {c}]"
        shown = " + ".join(f"{_number(a)} · {_number(b)}" for a, b in pairs)
        more = f" + … ({self.count} terms)" if self.count > len(factor) else ""
        return f"{lhs} = Σₖ {names} = {shown}{more} = {{value}}"

    def _elementwise_text(self, i: int, lhs: str, at: str, arrived: GradCopy) -> str:
        """The rule at one element: with each tensor's element, then with its value."""
        symbols = self._symbols()
        values = {"g": _number(arrived.at(*self.spot))}
        values.update({k: _number(float(v)) for k, v in self.operands.items()})
        # Tensors with elements get the element's index; 0-d ones (the loss) none.
        indexed = {k for k in self.operands if k not in self.points}
        if arrived.shape:
            indexed.add("g")
        template = _FORMULAS[self.name][i]
        named = template.format(**{k: v + at if k in indexed else v for k, v in symbols.items()})
        worked = template.format(**{**symbols, **values})
        return f"{lhs} = {named} = {worked} = {{value}}".replace("^1", "")

    def _accumulate_example(self) -> dict[str, Any] | None:
        assert self.accumulate is not None
        before, after = self.accumulate
        arrived = self.grad_outputs[0] if self.grad_outputs else None
        if arrived is None or arrived.block is None or after.block is None:
            return None
        leaf, g = self.names.out, grad_name(self.names.out)
        r, c = _spot(arrived)
        index = [r, c][2 - min(len(after.shape), 2) :]
        where = _where(index)
        value = after.at(r, c)
        incoming = _number(arrived.at(r, c))
        if before is None or before.block is None:
            text = f"{leaf}.grad{where} = {g}{where} = {incoming} = {_number(value)}"
        else:
            old = _number(before.at(r, c))
            text = (
                f"{leaf}.grad{where} = {leaf}.grad{where} + {g}{where} = {old} + {incoming}"
                f" = {_number(value)}"
            )
        return {"text": text, "value": _finite(value), "input": 0, "index": index}


def _where(index: list[int]) -> str:
    return "[" + ", ".join(map(str, index)) + "]" if index else ""


def _custom_source(node: Any, source: list[str]) -> tuple[str, int, int, str] | None:
    """A custom Function's backward: its class, first and last line, and code."""
    cls = getattr(node, "_forward_cls", None)
    code = getattr(getattr(cls, "backward", None), "__code__", None)
    if cls is None or code is None:
        return None
    first = code.co_firstlineno
    while first < len(source) and not source[first - 1].lstrip().startswith("def "):
        first += 1  # past decorators
    last = max((line for _, _, line in code.co_lines() if line is not None), default=first)
    body = textwrap.dedent("\n".join(line.rstrip() for line in source[first - 1 : last]))
    return cls.__name__, first, last, body


def _example_input(name: str, grad_inputs: tuple[Any, ...]) -> int | None:
    readable = [i for i, g in enumerate(grad_inputs) if _readable(g)]
    if name in _FORMULAS:
        readable = [i for i in readable if i < len(_FORMULAS[name])]
    if not readable:
        return None
    return next((i for i in _EXAMPLE_ORDER.get(name, ()) if i in readable), readable[0])


def _spot(grad: GradCopy | None) -> tuple[int, int]:
    """The block element a worked example shows: the first that is not zero (a ReLU
    zeroes many, and 0 · … = 0 explains little), or the first."""
    if grad is None or grad.block is None:
        return 0, 0
    nonzero = grad.block.nonzero()
    if not len(nonzero):
        return 0, 0
    r, c = (int(v) for v in nonzero[0])
    return r, c


def _operands(
    name: str, node: Any, i: int, spot: tuple[int, int]
) -> tuple[dict[str, torch.Tensor], int, frozenset[str]]:
    """Copies of the saved values input ``i``'s worked example at ``spot`` needs, and
    the number of terms of its sum."""
    r, c = spot
    product = _PRODUCTS.get((name, i))
    if product is not None:
        factor = _saved(node, product[0])
        if not _readable(factor) or factor.dim() != 2:
            raise ValueError("no saved factor to show")
        row = product[1] == "row"
        vector = factor[c, :_TERMS] if row else factor[:_TERMS, r]
        count = factor.shape[1] if row else factor.shape[0]
        return {"factor": vector.detach().to(torch.float64, copy=True)}, count, frozenset()
    operands = {}
    points = set()
    for symbol, attr in _SAVED_SYMBOLS.get(name, {}).items():
        saved = _saved(node, attr)
        if _readable(saved):
            element = saved.detach()
            for k in [r, c][2 - min(saved.dim(), 2) :]:
                element = element[min(k, element.shape[0] - 1)]
            operands[symbol] = element.reshape(-1)[0].to(torch.float64, copy=True)
            if saved.dim() == 0:
                points.add(symbol)
    return operands, 0, frozenset(points)


def capture(
    *,
    node_id: str,
    name: str,
    node: Any,
    names: Names,
    grad_inputs: tuple[Any, ...],
    sent: list[GradCopy | None],
    grad_outputs: tuple[Any, ...],
    arrived: GradCopy | None,
    custom: bool,
    source: list[str],
) -> Capture:
    """Copy what node ``node`` received (``arrived``, when already copied) and sent
    (``sent``, copied by the caller); keep what its rule and one element need."""
    outs: list[GradCopy | None] = (
        [arrived] if arrived is not None else [GradCopy.of(g) for g in grad_outputs]
    )
    result = Capture(node_id, name, names, outs, sent)
    for attr in _SCALARS.get(name, ()):
        value = _saved(node, attr)
        if value is not None:
            result.scalars[attr] = _scalar_text(value)
    if custom:
        result.custom = _custom_source(node, source)
    i = _example_input(name, grad_inputs)
    if i is not None and (custom or name in _FORMULAS):
        spot = _spot(sent[i])
        try:
            operands, count, points = (
                ({}, 0, frozenset()) if custom else _operands(name, node, i, spot)
            )
        except ValueError:
            return result
        result.spot = spot
        if name == "AddmmBackward0" and i == 0:
            count = grad_outputs[0].shape[0] if grad_outputs[0].dim() == 2 else 1
        result.example_input, result.operands, result.count = i, operands, count
        result.points = points
    return result
