"""Gradient check: one element of this iteration's gradient against a finite difference.

The numeric side re-runs the iteration's own forward and loss lines (the training
loop body's statements tagged ``forward`` and ``loss``) on float64 copies of the
values the iteration used, with the random generators as the loop body found them
(the dynamic net reuses the depth it drew), as ``torch.autograd.gradcheck`` does:
float64, a central difference. Nothing of the session is touched: the copies are
new objects, and torch's generator is restored afterwards.
"""

from __future__ import annotations

import ast
import copy
import random
from typing import Any

import numpy as np
import torch
from torch.overrides import TorchFunctionMode

from app.engine.copies import CopyFailed, CopyTimedOut
from app.engine.snapshot import scope_tensors
from app.engine.tracer import IterationStart, Run

__all__ = ["GRADCHECK_TIMEOUT_S", "GradcheckError", "checked_on_copy", "gradcheck"]

EPS = 1e-6  # relative step, as torch.autograd.gradcheck's eps for float64
NEGLIGIBLE = 1e-2  # |analytic| below this share of max |grad| is too small to judge
#: A check (two evaluations of the iteration's loss) may take this long on a copy.
GRADCHECK_TIMEOUT_S = 30.0


class GradcheckError(Exception):
    """A check that cannot be made: ``status`` 409 (not now), 422 (not this)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


_CODES: dict[str, Any] = {}


def _check_code(run: Run) -> Any:
    """The training loop body's forward and loss statements, compiled on their own."""
    program = run.program
    code = _CODES.get(program.source)
    if code is None:
        tree = ast.parse(program.source)
        loop = next(
            node
            for node in tree.body
            if isinstance(node, ast.For) and node.body[0].lineno == program.loop_body_line
        )
        body = [
            stmt for stmt in loop.body if program.phases.get(stmt.lineno) in ("forward", "loss")
        ]
        code = compile(ast.Module(body=body, type_ignores=[]), "<gradcheck>", "exec")
        _CODES[program.source] = code
    return code


def _computed(run: Run) -> set[str]:
    """The names the iteration's forward and loss lines assign (so not parameters)."""
    tree = ast.parse(run.program.source)
    return {
        node.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Name)
        and isinstance(node.ctx, ast.Store)
        and run.program.phases.get(node.lineno) in ("forward", "loss")
    }


class _Kinks(TorchFunctionMode):
    """Count the exact zeros of every op's result: a ReLU crossing changes a count."""

    def __init__(self) -> None:
        super().__init__()
        self.zeros: list[int] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if isinstance(out, torch.Tensor) and out.is_floating_point() and out.dim() > 0:
            self.zeros.append(int((out == 0).sum()))
        return out


def _float64(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        data = value.detach()
        return data.to(torch.float64, copy=True) if data.is_floating_point() else data.clone()
    if isinstance(value, np.ndarray):
        return value.astype(np.float64 if value.dtype.kind == "f" else value.dtype, copy=True)
    return value


def _copy_scope(run: Run, start: IterationStart) -> dict[str, Any]:
    """Float64 copies of what the loop body reads, generators as it found them."""
    memo: dict[int, Any] = {}
    for name, state in start.randoms.items():
        original = run.scope[name]
        if isinstance(original, random.Random):
            twin: Any = random.Random()
            twin.setstate(state)
        else:
            twin = copy.deepcopy(original)
            twin.bit_generator.state = state
        memo[id(original)] = twin
    namespace: dict[str, Any] = {}
    for name, value in run.scope.items():
        if id(value) in memo:
            namespace[name] = memo[id(value)]
        elif isinstance(value, torch.nn.Module):
            namespace[name] = copy.deepcopy(value, memo).to(torch.float64)
        elif isinstance(value, torch.Tensor | np.ndarray):
            namespace[name] = _float64(value)
        elif isinstance(value, list):
            namespace[name] = list(value)
        elif not isinstance(value, torch.optim.Optimizer):
            namespace[name] = value
    return namespace


def _target(namespace: dict[str, Any], name: str) -> Any:
    """The copy of parameter ``name`` (``w1``, ``model.0.weight``) in ``namespace``."""
    if name in namespace:
        return namespace[name]
    owner, _, path = name.partition(".")
    return namespace[owner].get_parameter(path)


def _loss(run: Run, start: IterationStart, name: str, index: tuple[int, ...], shift: float):
    """This iteration's loss with parameter ``name`` moved by ``shift`` at ``index``."""
    namespace = _copy_scope(run, start)
    target = _target(namespace, name)
    with torch.no_grad():
        target[index] += shift
    kinks = _Kinks()
    with torch.random.fork_rng(devices=[]), torch.no_grad(), kinks:
        torch.set_rng_state(start.torch_rng[0])
        exec(_check_code(run), namespace)
    zeros = kinks.zeros + [
        int((v == 0).sum())
        for v in namespace.values()
        if isinstance(v, np.ndarray) and v.dtype.kind == "f"
    ]
    return float(namespace["loss"]), zeros


def gradcheck(run: Run, name: str, index: list[int]) -> dict[str, Any]:
    """Check element ``index`` of parameter ``name``'s gradient in this iteration.

    Raises KeyError for an unknown tensor, GradcheckError for one that cannot be checked.
    """
    if run.program.static_name is not None:
        raise GradcheckError(
            422,
            "the static graph lesson computes its gradients inside the captured graph: "
            "there is no backward pass of the program's own to check",
        )
    tensors = scope_tensors(run)
    param = tensors[name]
    hand = run.scope.get(f"grad_{name}")
    by_autograd = isinstance(param, torch.Tensor) and param.requires_grad and param.is_leaf
    if not by_autograd and (hand is None or name in _computed(run)):
        raise GradcheckError(
            422, f"{name} is not a parameter: only leaves with a gradient can be checked"
        )
    shape = tuple(param.shape)
    if len(index) != len(shape) or not all(0 <= i < n for i, n in zip(index, shape, strict=True)):
        raise GradcheckError(
            422, f"index {index} is not an element of {name}, whose shape is {list(shape)}"
        )
    start = run.iteration_start
    if run.done or start is None or run.iteration < 0:
        raise GradcheckError(
            409, "a gradient can be checked inside the training loop, after its backward pass"
        )
    t = run.iteration
    if run.updated:
        raise GradcheckError(
            409,
            f"iteration {t} has already updated the weights, so its loss can no longer be "
            "evaluated: step to the next iteration's backward pass",
        )
    if by_autograd:
        leaf = run.registry.leaf_id(param)
        if leaf not in run.iteration_grads or param.grad is None:
            raise GradcheckError(
                409,
                f"the backward pass of iteration {t} has not produced {name}'s gradient yet: "
                "step past loss.backward()",
            )
        share = run.iteration_grads[leaf]
        analytic_all = param.grad if share is None else share
        accumulated = param.grad
    else:
        if hand is start.hand_grads.get(f"grad_{name}"):
            raise GradcheckError(
                409,
                f"grad_{name} has not been computed in iteration {t} yet: step past its line",
            )
        analytic_all = accumulated = hand
    key = tuple(index)
    analytic = float(analytic_all[key])
    value = float(param.detach()[key] if isinstance(param, torch.Tensor) else param[key])
    eps = EPS * max(1.0, abs(value))
    up, zeros_up = _loss(run, start, name, key, eps)
    down, zeros_down = _loss(run, start, name, key, -eps)
    numeric = (up - down) / (2 * eps)
    largest = float(abs(_float64(analytic_all)).max())
    scale = max(abs(analytic), abs(numeric))
    return {
        "tensor": name,
        "index": list(index),
        "iteration": t,
        "analytic": analytic,
        "numeric": numeric,
        "eps": eps,
        "rel_error": abs(analytic - numeric) / scale if scale > 0 else 0.0,
        "negligible": abs(analytic) < NEGLIGIBLE * largest,
        "kink": zeros_up != zeros_down,
        "grad": float(accumulated[key]),
    }


def checked_on_copy(run: Run, name: str, index: list[int], *, copy: bool) -> dict[str, Any]:
    """:func:`gradcheck` of ``run`` (paused), on a copy of it where one may be made
    (``copy``: Run.copy), so that what it computes lives and dies there; refusals come
    back as raised. Over GRADCHECK_TIMEOUT_S, GradcheckError 409."""
    if not copy or not run.parked:
        return gradcheck(run, name, index)
    try:
        outcome = run.copy(lambda copied: _checked(copied, name, index), GRADCHECK_TIMEOUT_S)
    except CopyTimedOut:
        raise GradcheckError(
            409,
            f"the check took over {GRADCHECK_TIMEOUT_S:g} s, longer than a check may "
            "take: try it with a smaller config",
        ) from None
    except CopyFailed:
        return gradcheck(run, name, index)
    if "unknown" in outcome:
        raise KeyError(outcome["unknown"])
    if "refused" in outcome:
        raise GradcheckError(*outcome["refused"])
    return dict(outcome["checked"])


def _checked(run: Run, name: str, index: list[int]) -> dict[str, Any]:
    """In a copy: :func:`gradcheck`'s answer, or why it gave none, as JSON."""
    try:
        return {"checked": gradcheck(run, name, index)}
    except KeyError as exc:
        return {"unknown": exc.args[0] if exc.args else name}
    except GradcheckError as exc:
        return {"refused": [exc.status, exc.message]}
