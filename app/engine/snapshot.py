"""TensorSummary and TensorDetail of the tensors and arrays a lesson has in scope."""

from __future__ import annotations

import math
from collections.abc import Iterator
from itertools import islice
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

if TYPE_CHECKING:
    from app.engine.tracer import Run

__all__ = [
    "SummaryCache",
    "arrays",
    "bounded_state",
    "optimizer_state",
    "scalars",
    "scope_tensors",
    "tensor_detail",
    "tensor_summary",
]

_PREVIEW = 8
_BINS = 32


def _finite(value: float) -> float | None:
    """JSON has no NaN or infinity: those become null."""
    return value if math.isfinite(value) else None


def _stats(values: torch.Tensor) -> dict[str, float | None]:
    if values.numel() == 0:
        return dict.fromkeys(("min", "max", "mean", "std", "norm"))
    data = values.detach()
    if not (data.is_floating_point() or data.is_complex()):
        data = data.double()
    std = data.std() if data.numel() > 1 else torch.zeros((), dtype=data.dtype, device=data.device)
    row = torch.stack([data.min(), data.max(), data.mean(), std, data.norm()]).tolist()
    return {
        k: _finite(float(v))
        for k, v in zip(("min", "max", "mean", "std", "norm"), row, strict=True)
    }


def _as_torch(value: Any) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(value)) if isinstance(value, np.ndarray) else value


def tensor_summary(value: torch.Tensor | np.ndarray) -> dict[str, Any]:
    """Describe a tensor or ndarray: shape, dtype, device, autograd fields, stats."""
    with torch.no_grad():
        if isinstance(value, np.ndarray):
            return {
                "shape": list(value.shape),
                "dtype": str(value.dtype),
                "device": "cpu",
                "requires_grad": False,
                "is_leaf": True,
                "grad_fn": None,
                "version": 0,
                "stats": _stats(_as_torch(value)),
                "grad": None,
            }
        grad = value.grad if value.is_leaf else None
        return {
            "shape": list(value.shape),
            "dtype": str(value.dtype).removeprefix("torch."),
            "device": str(value.device),
            "requires_grad": value.requires_grad,
            "is_leaf": value.is_leaf,
            "grad_fn": value.grad_fn.name() if value.grad_fn is not None else None,
            "version": value._version,
            "stats": _stats(value),
            "grad": tensor_summary(grad) if grad is not None else None,
        }


class SummaryCache:
    """Summaries of torch tensors, reused while nothing they show can have changed.

    A tensor's values change only through ops that bump its version counter,
    so (version, requires_grad, grad_fn, grad and its version) identify a
    summary. NumPy arrays have no version counter and are summarised each time.
    """

    def __init__(self) -> None:
        self._entries: dict[int, tuple[tuple[Any, ...], tuple[int, ...], dict[str, Any]]] = {}

    def summaries(self, values: dict[str, Any], keep: bool = False) -> dict[str, dict[str, Any]]:
        """Summaries of ``values`` by name; forgets tensors no longer asked for (unless
        ``keep``: a second call for the same moment, a frame's locals)."""
        entries: dict[int, tuple[tuple[Any, ...], tuple[int, ...], dict[str, Any]]] = (
            self._entries if keep else {}
        )
        out: dict[str, dict[str, Any]] = {}
        for name, value in values.items():
            if not isinstance(value, torch.Tensor):
                out[name] = tensor_summary(value)
                continue
            grad = value.grad if value.is_leaf else None
            # The referenced objects are kept with the entry, so their ids stay theirs.
            refs = (value, value.grad_fn, grad)
            key = (
                value._version,
                value.requires_grad,
                id(value.grad_fn),
                id(grad),
                grad._version if grad is not None else -1,
            )
            entry = self._entries.get(id(value))
            if entry is None or entry[0][0] is not value or entry[1] != key:
                entry = (refs, key, tensor_summary(value))
            entries[id(value)] = entry
            out[name] = entry[2]
        self._entries = entries
        return out


def _nested(values: torch.Tensor) -> Any:
    if values.dim() == 0:
        return _finite(float(values))
    return [_nested(v) for v in values]


def tensor_detail(value: torch.Tensor | np.ndarray) -> dict[str, Any]:
    """A summary plus the top-left block (at most 8×8) and a 32-bin histogram of every
    finite value, counted a chunk at a time: a detail never copies the whole tensor."""
    detail = tensor_summary(value)
    with torch.no_grad():
        data = _as_torch(value).detach()
        block = data
        while block.dim() > 2:
            block = block[0]
        if block.dim() == 2:
            block = block[:_PREVIEW, :_PREVIEW]
        elif block.dim() == 1:
            block = block[:_PREVIEW]
        detail["preview"] = _nested(_real(block))
        detail["histogram"] = _histogram(data)
    return detail


_CHUNK = 1 << 18  # values per piece of a histogram: 2 MiB as float64


def _real(values: torch.Tensor) -> torch.Tensor:
    return (values.abs() if values.is_complex() else values).double().cpu()


def _finite_chunks(data: torch.Tensor) -> Iterator[torch.Tensor]:
    flat = data.reshape(-1)  # a view, unless the tensor is not contiguous
    for start in range(0, flat.numel(), _CHUNK):
        chunk = _real(flat[start : start + _CHUNK])
        yield chunk[torch.isfinite(chunk)]


def _histogram(data: torch.Tensor) -> dict[str, list[Any]]:
    low, high = math.inf, -math.inf
    for finite in _finite_chunks(data):
        if finite.numel():
            low, high = min(low, float(finite.min())), max(high, float(finite.max()))
    if low > high:
        return {"edges": [], "counts": []}
    if low == high:
        low, high = low - 0.5, high + 0.5
    counts = torch.zeros(_BINS, dtype=torch.float64)
    for finite in _finite_chunks(data):
        counts += torch.histc(finite, bins=_BINS, min=low, max=high)
    edges = torch.linspace(low, high, _BINS + 1, dtype=torch.float64)
    return {"edges": [float(e) for e in edges], "counts": [int(c) for c in counts]}


def _is_array(value: Any) -> bool:
    return isinstance(value, torch.Tensor | np.ndarray)


def arrays(names: dict[str, Any]) -> dict[str, Any]:
    """The tensors and arrays among ``names`` (a frame's locals), by name."""
    return {n: v for n, v in names.items() if not n.startswith("_") and _is_array(v)}


_EXACT = 2**53


def _scalar(value: Any) -> float | bool | None:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value) if -_EXACT <= value <= _EXACT else None
    return _finite(float(value))


def scalars(names: dict[str, Any], exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """Python (and NumPy) numbers and booleans among ``names``, by name: JSON numbers,
    null where not finite or beyond ±2⁵³."""
    return {
        name: _scalar(value)
        for name, value in names.items()
        if isinstance(value, int | float | bool | np.number | np.bool_)
        and not name.startswith("_")
        and name not in exclude
    }


def scope_tensors(run: Run) -> dict[str, Any]:
    """Tensors and arrays in scope, by name; module parameters as ``<module>.<name>``.

    Names of the innermost lesson function (a custom ``forward``/``backward``)
    shadow module-level names, as they do for the code on screen.
    """
    found: dict[str, Any] = {}
    for name, value in run.scope.items():
        if name.startswith("_"):
            continue
        if _is_array(value):
            found[name] = value
        elif isinstance(value, torch.nn.Module):
            for param_name, param in value.named_parameters():
                found[f"{name}.{param_name}"] = param
    frame = run.frame
    if frame is not None and not run.in_module_frame:
        for name, value in frame.f_locals.items():
            if _is_array(value):
                found[name] = value
    return found


def optimizer_state(run: Run) -> dict[str, Any] | None:
    """The first optimizer in scope: its type and per-parameter state buffers."""
    optimizer = next((v for v in run.scope.values() if isinstance(v, torch.optim.Optimizer)), None)
    if optimizer is None:
        return None
    names = {id(t): name for name, t in scope_tensors(run).items()}
    state: dict[str, Any] = {}
    for index, group in enumerate(optimizer.param_groups):
        for position, param in enumerate(group["params"]):
            entry: dict[str, Any] = {}
            for key, buffer in optimizer.state.get(param, {}).items():
                if key == "step":
                    entry["step"] = int(buffer)
                elif isinstance(buffer, torch.Tensor):
                    entry[key] = tensor_summary(buffer)
            # Only the parameters the optimizer keeps state for, as torch has it: none
            # before the first step (Adam's entries always carry their step count).
            if entry:
                name = names.get(id(param), f"param_groups[{index}].params[{position}]")
                state[name] = entry
    return {"type": type(optimizer).__name__, "state": state}


# What the State of an edited program lists at most: names per scope, a name's length,
# frames (a learner's program is free to bind 20,000 names, or one of a megabyte).
MAX_NAMES = 256
MAX_NAME_LENGTH = 128
MAX_FRAMES = 32


def _bounded_names(named: dict[str, Any]) -> dict[str, Any]:
    short = ((name, value) for name, value in named.items() if len(name) <= MAX_NAME_LENGTH)
    return dict(islice(short, MAX_NAMES))


def bounded_state(state: dict[str, Any]) -> dict[str, Any]:
    """The State of an edited program, its names bounded (MAX_NAMES and the like)."""
    frames = state["frames"][-MAX_FRAMES:]
    return {
        **state,
        "variables": _bounded_names(state["variables"]),
        "scalars": _bounded_names(state["scalars"]),
        "frames": [
            {
                **frame,
                "variables": _bounded_names(frame["variables"]),
                "scalars": _bounded_names(frame["scalars"]),
            }
            for frame in frames
        ],
    }
