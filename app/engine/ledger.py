"""Ledgers: what one backward node did, in the lesson's names and with its numbers.

A node hook (``hook(grad_inputs, grad_outputs)``, PyTorch's names and alignment)
captures a :class:`Capture`: small copies of the gradients (a top-left block, a
norm) and of the few values one worked-out element needs. It keeps no reference
to a gradient: a kept reference makes ``AccumulateGrad`` copy the incoming
gradient instead of stealing it, which changes ``.grad``'s identity and version.
The JSON (:meth:`Capture.ledger`) is built from the copies when first asked for.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from math import isfinite
from typing import Any

import torch

from app.engine.naming import grad_name, operand

__all__ = ["BLOCK", "Capture", "GradCopy", "Names", "accumulate", "capture", "saved_input"]

BLOCK = 4  # previews are the top-left BLOCK × BLOCK block
_TERMS = 4  # terms of a sum written out


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
    to: str | None

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


def _element(t: torch.Tensor, index: Sequence[int]) -> torch.Tensor:
    """A 0-d copy of ``t[index]`` (indices past a dimension's end, or for dimensions ``t``
    lacks because it broadcasts, are left out)."""
    offset = len(index) - t.dim()
    picked = t.detach()
    for i in index[max(0, offset) :]:
        picked = picked[min(i, picked.shape[0] - 1)]
    return picked.to(torch.float64, copy=True)


@dataclass
class Names:
    """The lesson's names for a node's output and its inputs (aligned with next_functions)."""

    out: str
    inputs: list[str]


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
_ZH_WORDS = {"Σ_rows": "按行求和 Σ"}
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
# The input a worked-out example prefers (the first of these with a gradient).
_EXAMPLE_ORDER: dict[str, tuple[int, ...]] = {"AddmmBackward0": (2, 1, 0)}


def saved_input(node: Any, name: str, index: int) -> Any:
    """The tensor node ``node`` (of type ``name``) saved as its input ``index``, if any."""
    attr = _SAVED_SYMBOLS.get(name, {}).get("abc"[index] if index < 3 else "")
    return None if attr is None else _saved(node, attr)


def _saved(node: Any, attr: str) -> Any:
    try:
        return getattr(node, f"_saved_{attr}")
    except (AttributeError, RuntimeError):
        return None


def _scalar_text(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        value = value.item() if value.numel() == 1 else value
    return _number(float(value)) if isinstance(value, int | float) else str(value)


def _symbols(names: Names, node: Any) -> dict[str, str]:
    symbols = {"g": grad_name(names.out), "out": operand(names.out)}
    for key, name in zip("abc", names.inputs, strict=False):
        symbols[key] = operand(name)
    minimum = _saved(node, "min")
    symbols["min"] = "min" if minimum is None else _scalar_text(minimum)
    exponent = _saved(node, "exponent")
    if exponent is not None:
        symbols["exponent"] = _scalar_text(exponent)
        symbols["exponent_1"] = _scalar_text(float(_scalar_text(exponent)) - 1)
    return symbols


def _formulas(
    name: str, names: Names, node: Any, grads: list[GradCopy | None]
) -> list[tuple[int, str]] | None:
    """(input, "grad_input = formula") for each input that receives a gradient."""
    formulas = _FORMULAS.get(name)
    if formulas is None:
        return None
    symbols = _symbols(names, node)
    out = []
    for index, formula in enumerate(formulas):
        if index < len(grads) and grads[index] is not None and index < len(names.inputs):
            text = formula.format(**symbols).replace("^1", "").replace("ᵀᵀ", "")
            out.append((index, f"{grad_name(names.inputs[index])} = {text}"))
    return out


@dataclass
class Capture:
    """What a node hook copied; :meth:`ledger` turns it into the contract's Ledger."""

    node_id: str
    name: str
    rule_en: str
    rule_zh: str
    grad_outputs: list[GradCopy | None]
    grad_inputs: list[GradCopy | None]
    accumulate: tuple[GradCopy | None, GradCopy] | None = None
    contributions: list[tuple[str, GradCopy]] = field(default_factory=list)
    example: Callable[[], dict[str, Any]] | None = None
    source_lines: tuple[int, int] | None = None
    _json: dict[str, Any] | None = None

    def ledger(self) -> dict[str, Any]:
        if self._json is None:
            example = None
            if self.example is not None:
                try:
                    example = self.example()
                except (IndexError, RuntimeError, ValueError):
                    example = None
            self._json = {
                "node_id": self.node_id,
                "name": self.name,
                "rule": {"en": self.rule_en, "zh": self.rule_zh},
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
            if self.source_lines is not None:
                self._json["source_lines"] = list(self.source_lines)
        return self._json


def _example(
    input: int, index: list[int], value: torch.Tensor, text: Callable[[float], str]
) -> Callable[[], dict[str, Any]]:
    def render() -> dict[str, Any]:
        number = float(value)
        return {"text": text(number), "value": _finite(number), "input": input, "index": index}

    return render


def _sum_of_products(
    lhs: str,
    left: tuple[str, torch.Tensor],
    right: tuple[str, torch.Tensor],
    value: torch.Tensor,
    input: int,
    index: list[int],
) -> Callable[[], dict[str, Any]]:
    """``lhs = Σ_k left[k] · right[k]``, the first terms written out."""
    (left_name, u), (right_name, v) = left, right
    count = u.shape[0]
    u, v = u[:_TERMS].to(torch.float64, copy=True), v[:_TERMS].to(torch.float64, copy=True)

    def text(number: float) -> str:
        terms = " + ".join(
            f"{_number(a)} · {_number(b)}" for a, b in zip(u.tolist(), v.tolist(), strict=True)
        )
        more = f" + … ({count} terms)" if count > _TERMS else ""
        return f"{lhs} = Σₖ {left_name} · {right_name} = {terms}{more} = {_number(number)}"

    return _example(input, index, value, text)


def _matrix_example(
    name: str, names: Names, node: Any, g_out: torch.Tensor, grads: tuple[Any, ...], i: int
) -> Callable[[], dict[str, Any]] | None:
    """One element of a matrix product's input gradient: a row times a row."""
    g = grad_name(names.out)
    target = grads[i]
    lhs = f"{grad_name(names.inputs[i])}[0, 0]"
    mm = name == "MmBackward0"
    if name == "AddmmBackward0" and i == 0:
        column = g_out[:, 0] if g_out.dim() == 2 else g_out
        ones = torch.ones_like(column)
        return _sum_of_products(
            f"{grad_name(names.inputs[0])}[0]",
            (f"{g}[k, 0]", column),
            ("1", ones),
            _element(target, [0]),
            0,
            [0],
        )
    other_first = (mm and i == 0) or (not mm and i == 1)
    if other_first:  # grad_A = g · Bᵀ: row 0 of g times row 0 of B
        factor = _saved(node, "mat2")
        symbol = names.inputs[1 if mm else 2]
        if factor is None:
            return None
        return _sum_of_products(
            lhs,
            (f"{g}[0, k]", g_out[0]),
            (f"{symbol}[0, k]", factor[0]),
            _element(target, [0, 0]),
            i,
            [0, 0],
        )
    factor = _saved(node, "self" if mm else "mat1")  # grad_B = Aᵀ · g
    symbol = names.inputs[0 if mm else 1]
    if factor is None:
        return None
    return _sum_of_products(
        lhs,
        (f"{symbol}[k, 0]", factor[:, 0]),
        (f"{g}[k, 0]", g_out[:, 0]),
        _element(target, [0, 0]),
        i,
        [0, 0],
    )


def _elementwise_example(
    name: str, names: Names, node: Any, g_out: torch.Tensor, grads: tuple[Any, ...], i: int
) -> Callable[[], dict[str, Any]]:
    """The rule at one element: written with the element of each tensor, then its value."""
    target = grads[i]
    index = [0] * target.dim()
    at = "[" + ", ".join(map(str, index)) + "]" if index else ""
    values: dict[str, torch.Tensor] = {"g": _element(g_out, index)}
    for symbol, attr in _SAVED_SYMBOLS.get(name, {}).items():
        saved = _saved(node, attr)
        if _readable(saved):
            values[symbol] = _element(saved, index)
    symbols = _symbols(names, node)
    template = _FORMULAS[name][i]
    named = template.format(**{k: v + at if k in values else v for k, v in symbols.items()})
    lhs = grad_name(names.inputs[i]) + at

    def text(number: float) -> str:
        numbers = {k: _number(float(v)) for k, v in values.items()}
        worked = template.format(**{**symbols, **numbers})
        return f"{lhs} = {named} = {worked} = {_number(number)}".replace("^1", "")

    return _example(i, index, _element(target, index), text)


def _example_for(
    name: str,
    names: Names,
    node: Any,
    grad_inputs: tuple[Any, ...],
    grad_outputs: tuple[Any, ...],
    formulas: list[tuple[int, str]],
) -> Callable[[], dict[str, Any]] | None:
    g_out = grad_outputs[0] if grad_outputs else None
    if not isinstance(g_out, torch.Tensor) or not _readable(g_out):
        return None
    readable = [i for i, _ in formulas if _readable(grad_inputs[i])]
    if not readable:
        return None
    order = _EXAMPLE_ORDER.get(name, ())
    i = next((j for j in order if j in readable), readable[0])
    with torch.no_grad():
        if name in ("MmBackward0", "AddmmBackward0"):
            return _matrix_example(name, names, node, g_out, grad_inputs, i)
        if name == "TBackward0":
            target = grad_inputs[i]
            index = [0, 1] if target.dim() == 2 and target.shape[1] > 1 else [0] * target.dim()
            source = _element(g_out, index[::-1])
            lhs = f"{grad_name(names.inputs[0])}[{', '.join(map(str, index))}]"
            rhs = f"{grad_name(names.out)}[{', '.join(map(str, index[::-1]))}]"
            return _example(
                i,
                index,
                _element(target, index),
                lambda n: f"{lhs} = {rhs} = {_number(float(source))}",
            )
        if name == "SumBackward0":
            target = grad_inputs[i]
            index = [0] * target.dim()
            g = grad_name(names.out)
            lhs = f"{grad_name(names.inputs[0])}[{', '.join(map(str, index))}]"
            return _example(
                i, index, _element(target, index), lambda n: f"{lhs} = {g} = {_number(n)}"
            )
        return _elementwise_example(name, names, node, g_out, grad_inputs, i)


def _custom_rule(node: Any, source: list[str]) -> tuple[str, str, tuple[int, int] | None]:
    backward = getattr(getattr(node, "_forward_cls", None), "backward", None)
    code = getattr(backward, "__code__", None)
    owner = getattr(node, "_forward_cls", type(node)).__name__
    if code is None:
        return _unknown(type(node).__name__)
    first = code.co_firstlineno
    while source and first < len(source) and not source[first - 1].lstrip().startswith("def "):
        first += 1  # past decorators
    last = max((line for _, _, line in code.co_lines() if line is not None), default=first)
    lines = source[first - 1 : last]
    body = textwrap.dedent("\n".join(line.rstrip() for line in lines))
    return (
        f"The lesson's own {owner}.backward (lines {first}–{last}):\n{body}",
        f"本课自己写的 {owner}.backward（第 {first}–{last} 行）：\n{body}",
        (first, last),
    )


def _unknown(name: str) -> tuple[str, str, None]:
    return (
        f"No rule known for {name}: here are the numbers.",
        f"没有 {name} 的已知规则：下面是实际的数值。",
        None,
    )


def capture(
    *,
    node_id: str,
    name: str,
    node: Any,
    names: Names,
    targets: list[str | None],
    grad_inputs: tuple[Any, ...],
    grad_outputs: tuple[Any, ...],
    custom: bool,
    source: list[str],
) -> Capture:
    """Copy what node ``node`` received and sent (``targets``: who receives each
    grad_input); build its rule in the lesson's ``names``."""
    ins = [GradCopy.of(g, to) for g, to in zip(grad_inputs, targets, strict=False)]
    outs = [GradCopy.of(g) for g in grad_outputs]
    formulas = None if custom else _formulas(name, names, node, ins)
    example = None
    source_lines = None
    if custom:
        rule_en, rule_zh, source_lines = _custom_rule(node, source)
        example = _custom_example(names, node, grad_inputs, grad_outputs)
    elif formulas is None:
        rule_en, rule_zh, _ = _unknown(name)
    else:
        rule_en = "; ".join(text for _, text in formulas)
        rule_zh = rule_en
        for word, zh in _ZH_WORDS.items():
            rule_zh = rule_zh.replace(word, zh)
        rule_en = rule_en.replace("Σ_rows", "Σ over rows of")
        if formulas:
            example = _example_for(name, names, node, grad_inputs, grad_outputs, formulas)
    return Capture(
        node_id=node_id,
        name=name,
        rule_en=rule_en,
        rule_zh=rule_zh,
        grad_outputs=outs,
        grad_inputs=ins,
        example=example,
        source_lines=source_lines,
    )


def _custom_example(
    names: Names, node: Any, grad_inputs: tuple[Any, ...], grad_outputs: tuple[Any, ...]
) -> Callable[[], dict[str, Any]] | None:
    g_out = grad_outputs[0] if grad_outputs else None
    i = next((j for j, g in enumerate(grad_inputs) if _readable(g)), None)
    if i is None or not isinstance(g_out, torch.Tensor) or not _readable(g_out):
        return None
    target = grad_inputs[i]
    index = [0] * target.dim()
    where = "[" + ", ".join(map(str, index)) + "]" if index else ""
    arrived = _element(g_out, index)
    owner = getattr(getattr(node, "_forward_cls", None), "__name__", "backward")
    lhs = f"{grad_name(names.inputs[i]) if i < len(names.inputs) else 'grad_input'}{where}"

    def text(number: float) -> str:
        return (
            f"{owner}.backward turned {grad_name(names.out)}{where} = "
            f"{_number(float(arrived))} into {lhs} = {_number(number)}"
        )

    return _example(i, index, _element(target, index), text)


def accumulate(
    *,
    capture_: Capture,
    leaf: str,
    before: GradCopy | None,
    after: torch.Tensor | None,
    contributions: list[tuple[str, Any]],
) -> None:
    """Complete an AccumulateGrad capture: ``.grad`` before + incoming = after."""
    before_grad = before
    after_grad = GradCopy.of(after)
    if after_grad is None:
        return
    capture_.accumulate = (before_grad, after_grad)
    capture_.contributions = contributions if len(contributions) > 1 else []
    incoming = capture_.grad_outputs[0] if capture_.grad_outputs else None
    g = grad_name(leaf)
    zeroed = before_grad is None or (before_grad.norm is not None and float(before_grad.norm) == 0)
    if before_grad is None:
        capture_.rule_en = f"{leaf}.grad = {g}  (.grad was None: it is set, not added to)"
        capture_.rule_zh = f"{leaf}.grad = {g}（.grad 原为 None：直接赋值，而非累加）"
    else:
        capture_.rule_en = f"{leaf}.grad = {leaf}.grad + {g}"
        capture_.rule_zh = capture_.rule_en
        if not zeroed:
            capture_.rule_en += "  (.grad was not zeroed: this gradient adds to the last ones)"
            capture_.rule_zh += "（.grad 没有清零：这次的梯度累加到之前的梯度上）"
    if len(contributions) > 1:
        uses = " + ".join(source for source, _ in contributions)
        capture_.rule_en += f"; {g} is the sum of {len(contributions)} uses: {uses}"
        capture_.rule_zh += f"；{g} 是 {len(contributions)} 处使用的梯度之和：{uses}"
    if incoming is None or incoming.block is None or after_grad.block is None:
        return
    in_block, after_block = incoming.block, after_grad.block
    before_block = before_grad.block if before_grad is not None else None

    def text(number: float) -> str:
        first = _number(float(in_block.reshape(-1)[0]))
        if before_block is None:
            return f"{leaf}.grad[0, 0] = {g}[0, 0] = {first} = {_number(number)}"
        old = _number(float(before_block.reshape(-1)[0]))
        return (
            f"{leaf}.grad[0, 0] = {leaf}.grad[0, 0] + {g}[0, 0] = {old} + {first}"
            f" = {_number(number)}"
        )

    index = [0] * len(after_grad.shape)
    capture_.example = _example(0, index, after_block.reshape(-1)[0], text)
