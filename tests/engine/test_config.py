"""Config validation: types, bounds, fields, devices and the budgets (DESIGN.md §5)."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from app.lessons.config import (
    ConfigError,
    Limits,
    estimate_bytes,
    estimate_work,
    resolve_config,
)
from app.lessons.plain import run_plain
from app.lessons.registry import CONFIG_FIELDS, LESSONS, get_lesson

LIMITS = Limits()
GPU_LIMITS = Limits(devices=frozenset({"cpu", "cuda:0", "cuda:1"}))


def _error(lesson_id: str, overrides: object, limits: Limits = LIMITS) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        resolve_config(get_lesson(lesson_id), overrides, limits=limits)
    assert str(caught.value) == caught.value.message
    return caught.value


def test_config_error_carries_field_and_message() -> None:
    error = ConfigError("N", "N must be an integer between 1 and 65536; got 0")
    assert isinstance(error, Exception)
    assert (error.field, error.message, str(error)) == ("N", error.message, error.message)


@pytest.mark.parametrize("lesson_id", list(LESSONS))
def test_empty_overrides_give_the_defaults(lesson_id: str) -> None:
    lesson = get_lesson(lesson_id)
    config = resolve_config(lesson, {}, limits=LIMITS)
    assert config == lesson.defaults
    assert list(config) == list(lesson.fields)


def test_overrides_replace_defaults_and_numbers_become_floats() -> None:
    config = resolve_config(
        get_lesson("dynamic_net"),
        {"N": 8, "learning_rate": 1, "momentum": 0, "zero_grad": False, "seed": 2**32 - 1},
        limits=LIMITS,
    )
    assert config["N"] == 8 and config["seed"] == 2**32 - 1 and config["zero_grad"] is False
    assert type(config["learning_rate"]) is float and config["learning_rate"] == 1.0
    assert type(config["momentum"]) is float and config["momentum"] == 0.0
    assert config["D_in"] == 1000  # untouched default


@pytest.mark.parametrize("overrides", [None, [], "N=3", 3, [["N", 3]]])
def test_config_must_be_an_object(overrides: object) -> None:
    error = _error("autograd", overrides)
    assert error.field == "config"
    assert error.message == 'config must be a JSON object of settings, such as {"iterations": 20}'


def test_unknown_field_is_rejected() -> None:
    error = _error("autograd", {"N": 3, "batch_size": 3})
    assert error.field == "batch_size"
    assert error.message == (
        '"batch_size" is not a config field; the settings of the autograd lesson are '
        "N, D_in, H, D_out, learning_rate, iterations, device, seed, zero_grad"
    )


@pytest.mark.parametrize(
    ("lesson_id", "field"),
    [("numpy", "zero_grad"), ("tensors", "zero_grad"), ("static_graph", "zero_grad"),
     ("autograd", "momentum"), ("optim", "momentum"), ("numpy", "momentum")],
)  # fmt: skip
def test_a_field_the_lesson_does_not_take_is_rejected(lesson_id: str, field: str) -> None:
    error = _error(lesson_id, {field: 0.5 if field == "momentum" else True})
    assert error.field == field
    assert error.message.startswith(f"{field} is not a setting of the {lesson_id} lesson; ")


@pytest.mark.parametrize("field", ["N", "D_in", "H", "D_out"])
@pytest.mark.parametrize(
    ("value", "shown"),
    [(0, "0"), (-1, "-1"), (65537, "65537"), (3.0, "3.0"), (2.5, "2.5"), ("3", '"3"'),
     (None, "null"), (True, "true"), (math.nan, "NaN"), (math.inf, "Infinity"),
     ([3], "a list"), ({"v": 3}, "an object"), (10**100, "a very large integer")],
)  # fmt: skip
def test_sizes_are_integers_within_bounds(field: str, value: object, shown: str) -> None:
    error = _error("autograd", {field: value})
    assert error.field == field
    assert error.message == f"{field} must be an integer between 1 and 65536; got {shown}"


def test_sizes_follow_the_max_dim_limit() -> None:
    lesson = get_lesson("nn")
    small = {"D_in": 50, "H": 100}
    assert resolve_config(lesson, small, limits=Limits(max_dim=100))["H"] == 100
    error = _error("nn", {**small, "H": 101}, Limits(max_dim=100))
    assert error.message == "H must be an integer between 1 and 100; got 101"


@pytest.mark.parametrize(
    "value", [0, 0.0, -1e-3, 1.0000001, 2, math.nan, math.inf, -math.inf, "0.1", None, True,
              10**400]
)  # fmt: skip
def test_learning_rate_is_a_number_in_zero_one(value: object) -> None:
    error = _error("optim", {"learning_rate": value})
    assert error.field == "learning_rate"
    assert error.message.startswith(
        "learning_rate must be a number greater than 0 and at most 1; got "
    )


@pytest.mark.parametrize("value", [1, 1.0, 1e-12, 5e-324])
def test_learning_rate_accepts_its_range(value: float) -> None:
    config = resolve_config(get_lesson("optim"), {"learning_rate": value}, limits=LIMITS)
    assert config["learning_rate"] == value


@pytest.mark.parametrize("value", [0, -5, 10001, 2.0, "10", None, False])
def test_iterations_bounds(value: object) -> None:
    error = _error("tensors", {"iterations": value})
    assert error.field == "iterations"
    assert error.message.startswith("iterations must be an integer between 1 and 10000; got ")


def test_iterations_follow_the_limit_setting() -> None:
    limits = Limits(max_iterations=100)
    assert resolve_config(get_lesson("tensors"), {"iterations": 100}, limits=limits)
    assert _error("tensors", {"iterations": 101}, limits).message == (
        "iterations must be an integer between 1 and 100; got 101"
    )
    # A default above a lowered limit is reported too, naming the field.
    assert _error("custom_module", {}, limits).field == "iterations"


@pytest.mark.parametrize("value", [-1, 2**32, 1.0, "0", None, True])
def test_seed_bounds(value: object) -> None:
    error = _error("numpy", {"seed": value})
    assert error.field == "seed"
    assert error.message.startswith("seed must be an integer between 0 and 4294967295; got ")


@pytest.mark.parametrize("value", [1, 1.0, 1.5, -0.1, math.nan, "0.9", None, True])
def test_momentum_is_in_zero_one(value: object) -> None:
    error = _error("dynamic_net", {"momentum": value})
    assert error.field == "momentum"
    assert error.message.startswith("momentum must be a number at least 0 and less than 1; got ")


@pytest.mark.parametrize("value", ["true", 1, 0, None, "false"])
def test_zero_grad_is_a_boolean(value: object) -> None:
    error = _error("nn", {"zero_grad": value})
    assert error.field == "zero_grad"
    assert error.message.startswith("zero_grad must be true or false; got ")


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "gpu", "CPU", " cpu", "mps", 0, None])
def test_device_without_a_gpu(device: object) -> None:
    error = _error("autograd", {"device": device})
    assert error.field == "device"
    assert error.message.startswith("device must be one of the devices usable here (cpu); got ")


@pytest.mark.parametrize("device", ["cpu", "cuda", "cuda:0", "cuda:1"])
def test_usable_devices_are_accepted_as_given(device: str) -> None:
    config = resolve_config(get_lesson("autograd"), {"device": device}, limits=GPU_LIMITS)
    assert config["device"] == device


@pytest.mark.parametrize("device", ["cuda:2", "cuda:01", "cuda:", "cuda0"])
def test_unusable_devices_are_rejected_with_the_list(device: str) -> None:
    error = _error("autograd", {"device": device}, GPU_LIMITS)
    assert error.message == (
        f'device must be one of the devices usable here (cpu, cuda, cuda:0, cuda:1); got "{device}"'
    )


def test_cuda_alias_needs_cuda_0() -> None:
    limits = Limits(devices=frozenset({"cpu", "cuda:1"}))
    assert _error("autograd", {"device": "cuda"}, limits).field == "device"
    assert resolve_config(get_lesson("autograd"), {"device": "cuda:1"}, limits=limits)


def test_memory_estimate_follows_the_documented_formula() -> None:
    ones = {"N": 1, "D_in": 1, "H": 1, "D_out": 1, "iterations": 1}
    # data 2, params 4 (×4), activations 2 + 3 (×3): 33 float32 elements.
    assert estimate_bytes(get_lesson("autograd"), ones) == 33 * 4
    # Adam adds two buffers per parameter.
    assert estimate_bytes(get_lesson("optim"), ones) == (33 + 2 * 4) * 4
    # numpy: float64, and the check copies everything once more.
    assert estimate_bytes(get_lesson("numpy"), ones) == 33 * 2 * 8
    # dynamic_net: middle layer (+2 params), momentum buffer, 3 reuses (+6 activations).
    assert estimate_bytes(get_lesson("dynamic_net"), ones) == (2 + 6 * 5 + 11 * 3) * 4


@pytest.mark.parametrize("lesson_id", list(LESSONS))
def test_memory_estimate_covers_what_a_run_holds(lesson_id: str) -> None:
    lesson = get_lesson(lesson_id)
    config = {**lesson.defaults, "N": 16, "D_in": 40, "H": 30, "D_out": 5, "iterations": 2}
    scope = run_plain(lesson_id, config)
    storages: dict[int, int] = {}

    def add(value: object) -> None:
        if isinstance(value, torch.Tensor):
            storage = value.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
            if value.is_leaf and value.grad is not None:
                add(value.grad)
        elif hasattr(value, "nbytes") and hasattr(value, "dtype"):  # numpy arrays
            storages[id(value)] = int(value.nbytes)

    for value in scope.values():
        add(value)
    if "model" in scope:
        for param in scope["model"].parameters():
            add(param)
    if "optimizer" in scope:
        for state in scope["optimizer"].state.values():
            for buffer in state.values():
                add(buffer)
    held = sum(storages.values())
    assert 0 < held <= estimate_bytes(lesson, config)


def test_memory_budget_rejects_big_configs_with_the_estimate() -> None:
    error = _error("autograd", {"D_in": 65536, "H": 65536})
    assert error.field == "config"
    assert error.message == (
        "This configuration needs an estimated 64.1 GiB of tensor memory, over the budget "
        "of 2.0 GiB per session; lower N, D_in, H or D_out"
    )


def test_memory_budget_follows_the_setting() -> None:
    lesson = get_lesson("optim")
    needed = estimate_bytes(lesson, lesson.defaults)
    assert resolve_config(lesson, {}, limits=Limits(max_session_bytes=needed))
    error = _error("optim", {}, Limits(max_session_bytes=needed - 1))
    assert "over the budget of" in error.message and "MiB" in error.message


def test_work_estimate_follows_the_documented_formula() -> None:
    config = {"N": 2, "D_in": 3, "H": 5, "D_out": 7, "iterations": 10}
    assert estimate_work(get_lesson("nn"), config) == 11 * 3 * 2 * (3 * 5 + 5 * 7)
    assert estimate_work(get_lesson("dynamic_net"), config) == 11 * 3 * 2 * (15 + 3 * 25 + 35)


def test_work_budget_rejects_long_runs() -> None:
    limits = Limits(max_work=1e9)
    assert resolve_config(get_lesson("optim"), {"iterations": 10}, limits=limits)
    error = _error("optim", {"iterations": 100}, limits)
    assert error.field == "config"
    assert error.message == (
        "This run needs an estimated 1.96e+09 multiply-adds, over the budget of 1e+09 per "
        "session; lower iterations, N, D_in, H or D_out"
    )
    # With the default budget, the largest iteration count at default sizes is fine.
    for lesson in LESSONS.values():
        assert resolve_config(lesson, {"iterations": 10000}, limits=LIMITS)


def test_field_errors_come_before_budgets() -> None:
    error = _error("autograd", {"D_in": 65536, "H": 65536, "N": "64"})
    assert error.field == "N"


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=6,
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-5, max_value=2**33)
    | st.floats()
    | st.sampled_from(["cpu", "cuda", "cuda:0", "cuda:9", "", "1"])
)


@settings(max_examples=400, deadline=None)
@given(
    lesson_id=st.sampled_from(list(LESSONS)),
    overrides=st.dictionaries(
        st.sampled_from(CONFIG_FIELDS) | st.text(max_size=6), SCALARS | JSON, max_size=6
    )
    | JSON,
)
def test_resolve_config_raises_nothing_but_config_error(lesson_id: str, overrides: object) -> None:
    lesson = get_lesson(lesson_id)
    try:
        config = resolve_config(lesson, overrides, limits=GPU_LIMITS)
    except ConfigError as error:
        assert isinstance(error.field, str) and error.message
    else:
        assert list(config) == list(lesson.fields)
        assert all(config[field] == overrides[field] for field in overrides)  # type: ignore[union-attr]


@settings(max_examples=200, deadline=None)
@given(
    lesson_id=st.sampled_from(list(LESSONS)),
    dims=st.lists(st.integers(1, 65536), min_size=4, max_size=4),
    lr=st.floats(min_value=0, max_value=1, exclude_min=True),
    iterations=st.integers(1, 10000),
    seed=st.integers(0, 2**32 - 1),
)
def test_valid_values_are_accepted_unless_over_a_budget(
    lesson_id: str, dims: list[int], lr: float, iterations: int, seed: int
) -> None:
    lesson = get_lesson(lesson_id)
    overrides = dict(zip(("N", "D_in", "H", "D_out"), dims, strict=True))
    overrides |= {"learning_rate": lr, "iterations": iterations, "seed": seed}
    over_budget = (
        estimate_bytes(lesson, overrides) > LIMITS.max_session_bytes
        or estimate_work(lesson, overrides) > LIMITS.max_work
    )
    try:
        config = resolve_config(lesson, overrides, limits=LIMITS)
    except ConfigError as error:
        assert over_budget and error.field == "config"
    else:
        assert not over_budget
        assert {k: config[k] for k in overrides} == overrides
