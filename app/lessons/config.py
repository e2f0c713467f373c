"""Validate a lesson's config (DESIGN.md §5) before any tensor is allocated."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from app.lessons.registry import CONFIG_FIELDS, Lesson

__all__ = ["ConfigError", "Limits", "estimate_bytes", "estimate_work", "resolve_config"]

SEED_LIMIT = 2**32
_DEVICE = re.compile(r"cpu|cuda(:(0|[1-9][0-9]*))?")

# Per-lesson facts the budgets depend on.
_MIDDLE_REUSES = {"dynamic_net": 3}  # at most randint(0, 3) extra H×H layers per forward
_OPTIMIZER_BUFFERS = {"optim": 2, "dynamic_net": 1}  # Adam: exp_avg, exp_avg_sq; SGD momentum
_AUTOGRAD_CHECK_COPY = {"numpy"}  # copies its arrays into torch tensors for the final check


@dataclass(frozen=True)
class Limits:
    """Bounds set by the deployment; the API fills them from settings and devices."""

    max_dim: int = 65536
    max_iterations: int = 10000
    max_session_bytes: int = 2 * 1024**3
    max_work: float = 2e12
    devices: frozenset[str] = frozenset({"cpu"})


class ConfigError(Exception):
    """A config that breaks a rule: `field` names the setting, `message` says the limit."""

    def __init__(
        self, field: str, message: str, errors: list[tuple[str, str]] | None = None
    ) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
        self.errors = errors or [(field, message)]  # every invalid field, the first first


def resolve_config(lesson: Lesson, overrides: object, *, limits: Limits) -> dict[str, object]:
    """Return the lesson's full config, `overrides` (decoded JSON) over its defaults.

    Raise ConfigError for anything but a JSON object of the lesson's own settings,
    each of the right type and within bounds, and for a run over the budgets.
    """
    if not isinstance(overrides, dict):
        raise ConfigError(
            "config", 'config must be a JSON object of settings, such as {"iterations": 20}'
        )
    errors: list[ConfigError] = []
    for key in overrides:
        try:
            _check_name(lesson, key)
        except ConfigError as error:
            errors.append(error)
    config = {
        field: overrides[field] if field in overrides else lesson.defaults[field]
        for field in lesson.fields
    }
    for field in lesson.fields:
        try:
            config[field] = _CHECKS[field](field, config[field], limits)
        except ConfigError as error:
            errors.append(error)
    if errors:
        first = errors[0]
        raise ConfigError(first.field, first.message, [(e.field, e.message) for e in errors])
    _check_budgets(lesson, config, limits)
    return config


def estimate_bytes(lesson: Lesson, config: dict[str, object]) -> int:
    """Estimate, conservatively, the bytes of all tensors a run holds at once.

    elements = data + (4 + buffers) × params + 3 × activations, where
      data        = N·D_in + N·D_out                      (x, y)
      params      = D_in·H + H + H·D_out + D_out (+ H·H + H for dynamic_net's
                    middle layer), held as the value, its .grad and up to two
                    temporaries of the update, plus the optimizer's state
                    (buffers per parameter: Adam 2, SGD with momentum 1)
      activations = N·H·(2 + 2·reuses) + 3·N·D_out        (hidden layers before and
                    after ReLU; y_pred, error, squared error), held as this
                    iteration's values, their gradients and the previous
                    iteration's values (still named until reassigned);
    doubled for numpy, whose final check copies everything into torch tensors,
    and multiplied by the element size (8 for float64, 4 for float32).
    """
    n, d_in, h, d_out = (_int(config[f]) for f in ("N", "D_in", "H", "D_out"))
    reuses = _MIDDLE_REUSES.get(lesson.id, 0)
    data = n * d_in + n * d_out
    params = d_in * h + h + h * d_out + d_out + (h * h + h if reuses else 0)
    activations = n * h * (2 + 2 * reuses) + 3 * n * d_out
    buffers = _OPTIMIZER_BUFFERS.get(lesson.id, 0)
    elements = data + (4 + buffers) * params + 3 * activations
    if lesson.id in _AUTOGRAD_CHECK_COPY:
        elements *= 2
    return elements * lesson.element_size


def estimate_work(lesson: Lesson, config: dict[str, object]) -> int:
    """Estimate the multiply-adds of a whole run.

    (iterations + 1) × 3 × N × (D_in·H + reuses·H·H + H·D_out): one forward pass
    plus a backward pass of about twice its cost per iteration, with dynamic_net
    counted at its deepest (3 reuses of the middle layer); the extra iteration
    covers numpy's final check and static_graph's capture.
    """
    n, d_in, h, d_out = (_int(config[f]) for f in ("N", "D_in", "H", "D_out"))
    reuses = _MIDDLE_REUSES.get(lesson.id, 0)
    per_sample = d_in * h + reuses * h * h + h * d_out
    return (_int(config["iterations"]) + 1) * 3 * n * per_sample


def _check_name(lesson: Lesson, key: object) -> None:
    if not isinstance(key, str):
        raise ConfigError("config", "config keys must be strings naming settings")
    if key in lesson.fields:
        return
    settings = ", ".join(lesson.fields)
    if key in CONFIG_FIELDS:
        message = f"{key} is not a setting of the {lesson.id} lesson; its settings are {settings}"
    else:
        message = (
            f"{_describe(key)} is not a config field; "
            f"the settings of the {lesson.id} lesson are {settings}"
        )
    raise ConfigError(key, message)


def _check_budgets(lesson: Lesson, config: dict[str, object], limits: Limits) -> None:
    needed = estimate_bytes(lesson, config)
    if needed > limits.max_session_bytes:
        raise ConfigError(
            "config",
            f"This configuration needs an estimated {_bytes(needed)} of tensor memory, "
            f"over the budget of {_bytes(limits.max_session_bytes)} per session; "
            "lower N, D_in, H or D_out",
        )
    work = estimate_work(lesson, config)
    if work > limits.max_work:
        raise ConfigError(
            "config",
            f"This run needs an estimated {work:.3g} multiply-adds, over the budget of "
            f"{limits.max_work:.3g} per session; lower iterations, N, D_in, H or D_out",
        )


def _int(value: object) -> int:
    assert type(value) is int
    return value


def _integer(low: int, high: int | None) -> Callable[[str, object, Limits], int]:
    """Return a check for an integer in [low, high]; high None means limits.max_dim."""

    def check(field: str, value: object, limits: Limits) -> int:
        top = limits.max_dim if high is None else high
        if type(value) is not int or not low <= value <= top:
            raise ConfigError(
                field,
                f"{field} must be an integer between {low} and {top}; got {_describe(value)}",
            )
        return value

    return check


def _iterations(field: str, value: object, limits: Limits) -> int:
    return _integer(1, limits.max_iterations)(field, value, limits)


def _finite_number(value: object) -> int | float | None:
    """Return a JSON number that is not a boolean and is finite, else None."""
    if type(value) is int or (type(value) is float and math.isfinite(value)):
        return value
    return None


def _learning_rate(field: str, value: object, limits: Limits) -> float:
    number = _finite_number(value)
    if number is None or not 0 < number <= 1:
        raise ConfigError(
            field,
            f"{field} must be a number greater than 0 and at most 1; got {_describe(value)}",
        )
    return float(number)


def _momentum(field: str, value: object, limits: Limits) -> float:
    number = _finite_number(value)
    if number is None or not 0 <= number < 1:
        raise ConfigError(
            field,
            f"{field} must be a number at least 0 and less than 1; got {_describe(value)}",
        )
    return float(number)


def _zero_grad(field: str, value: object, limits: Limits) -> bool:
    if type(value) is not bool:
        raise ConfigError(field, f"{field} must be true or false; got {_describe(value)}")
    return value


def _available_devices(limits: Limits) -> list[str]:
    """Return the usable device names, "cuda" included when "cuda:0" is usable."""
    names = {d for d in limits.devices if _DEVICE.fullmatch(d)}
    if "cuda:0" in names:
        names.add("cuda")

    def order(name: str) -> tuple[int, int]:
        kind, _, index = name.partition(":")
        return (kind != "cpu", int(index) if index else -1)

    return sorted(names, key=order)


def _device(field: str, value: object, limits: Limits) -> str:
    available = _available_devices(limits)
    if type(value) is not str or value not in available:
        raise ConfigError(
            field,
            f"{field} must be one of the devices usable here ({', '.join(available)}); "
            f"got {_describe(value)}",
        )
    return value


_CHECKS: dict[str, Callable[[str, object, Limits], object]] = {
    "N": _integer(1, None),
    "D_in": _integer(1, None),
    "H": _integer(1, None),
    "D_out": _integer(1, None),
    "learning_rate": _learning_rate,
    "iterations": _iterations,
    "device": _device,
    "seed": _integer(0, SEED_LIMIT - 1),
    "zero_grad": _zero_grad,
    "momentum": _momentum,
}


def _describe(value: object) -> str:
    """Describe a decoded JSON value the way the user wrote it, briefly."""
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if type(value) is int and value.bit_length() > 64:
        return "a very large integer"
    if value is None or isinstance(value, bool | int | float | str):
        text = json.dumps(value, ensure_ascii=False)
        return text if len(text) <= 40 else text[:39] + "…"
    return f"a value of type {type(value).__name__}"


def _bytes(count: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")
