"""The JSON shapes of the REST API (DESIGN.md §5), for validation and for /docs.

Responses are built from the engine's plain dicts. Their models allow extra keys, so a
field the engine adds reaches clients (the contract may grow, never shrink), and routes
serialise with `response_model_exclude_unset`, so an optional key the engine leaves out
stays out rather than turning into null.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

__all__ = [
    "STEP_KINDS",
    "Config",
    "CreateSession",
    "Error",
    "GradElement",
    "Gradcheck",
    "GradcheckBody",
    "Graph",
    "GraphNode",
    "LessonDetail",
    "LessonInfo",
    "SeekBody",
    "State",
    "StepBody",
    "TensorDetail",
    "TensorSummary",
]

STEP_KINDS = ("event", "line", "phase", "iteration", "end")
StepKind = Literal["event", "line", "phase", "iteration", "end"]
MAX_COUNT = 1_000_000

_CONFIG_EXAMPLE: dict[str, Any] = {"N": 8, "D_in": 16, "H": 8, "D_out": 4, "iterations": 3}
_SIZE: dict[str, Any] = {"type": "integer", "minimum": 1}
# The fields any lesson takes and their fixed bounds, for /docs and schema-driven clients.
# The server checks more: per-lesson fields, upper bounds and budgets from its settings.
_CONFIG_SCHEMA: dict[str, Any] = {
    "properties": {
        "N": _SIZE,
        "D_in": _SIZE,
        "H": _SIZE,
        "D_out": _SIZE,
        "learning_rate": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        "iterations": {"type": "integer", "minimum": 1, "maximum": 10000},
        "device": {"type": "string", "examples": ["cpu", "cuda", "cuda:0"]},
        "seed": {"type": "integer", "minimum": 0, "maximum": 2**32 - 1},
        "zero_grad": {"type": "boolean"},
        "momentum": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
    },
    "additionalProperties": False,
}


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class Error(BaseModel):
    """Every 4xx and 5xx answer."""

    detail: str = Field(examples=["count: must be an integer between 1 and 1000000"])


class Config(_Out):
    """A lesson's settings (the resolved ones: every field the lesson takes)."""

    N: int = Field(description="Batch size.", examples=[64])
    D_in: int = Field(description="Input dimension.", examples=[1000])
    H: int = Field(description="Hidden dimension.", examples=[100])
    D_out: int = Field(description="Output dimension.", examples=[10])
    learning_rate: float = Field(examples=[1e-6])
    iterations: int = Field(examples=[10])
    device: str = Field(examples=["cpu"])
    seed: int = Field(examples=[0])
    zero_grad: bool | None = Field(
        default=None, description="Lessons with `.grad`: false lets gradients accumulate."
    )
    momentum: float | None = Field(default=None, description="`dynamic_net` only.")


class LessonInfo(_Out):
    id: str = Field(examples=["autograd"])
    title: str
    summary: str
    defaults: Config
    title_zh: str | None = None
    summary_zh: str | None = None


class Note(_Out):
    en: str
    zh: str


class LessonDetail(LessonInfo):
    source: str = Field(description="The lesson file's text: the code that runs.")
    notes: dict[str, Note] = Field(description="Notes by 1-based line number of `source`.")
    node_notes: dict[str, Note] = Field(
        default_factory=dict,
        description="What each node type the lesson's graphs contain computes, by node name.",
    )


class Stats(_Out):
    """Summary statistics; null where a value is not finite."""

    min: float | None
    max: float | None
    mean: float | None
    std: float | None
    norm: float | None


class TensorSummary(_Out):
    shape: list[int] = Field(examples=[[64, 100]])
    dtype: str = Field(examples=["float32"])
    device: str = Field(examples=["cpu"])
    requires_grad: bool
    is_leaf: bool
    grad_fn: str | None = Field(examples=["MmBackward0"])
    version: int = Field(description="The tensor's version counter (`_version`).")
    stats: Stats
    grad: TensorSummary | None


class Histogram(_Out):
    edges: list[float] = Field(description="33 bin edges (none when no value is finite).")
    counts: list[int] = Field(description="32 bin counts.")


class TensorDetail(TensorSummary):
    preview: list[Any] | float | None = Field(
        description=(
            "The top-left block (at most 8×8) as nested lists, sliced as NumPy would: "
            "t[:8, :8] of a matrix (of more dimensions, of its first matrix), t[:8] of a "
            "vector, the number itself of a 0-d tensor; null where not finite."
        )
    )
    histogram: Histogram


class Event(_Out):
    kind: Literal["line", "op", "node", "end"]
    line: int | None
    name: str | None = Field(examples=["aten::mm", "MmBackward0"])
    node_id: str | None
    ledger: Ledger | None = Field(default=None, description="`node` events: the node's ledger.")


class LessonError(_Out):
    type: str = Field(examples=["RuntimeError"])
    message: str
    line: int | None = Field(default=None, description="The lesson line that raised it.")


class Optimizer(_Out):
    type: str = Field(examples=["Adam"])
    state: dict[str, dict[str, int | TensorSummary]] = Field(
        description='Per parameter name: {"step": int, buffer name: TensorSummary}.'
    )


class Frame(_Out):
    function: str = Field(examples=["MyReLU.forward"])
    line: int
    variables: dict[str, TensorSummary]
    scalars: dict[str, float | bool | None]


class Interrupted(_Out):
    reason: Literal["time", "cancelled"]
    remaining: int | None = Field(
        description="What is left of the step's count (null for by=end): step again with it."
    )
    detail: str


class State(_Out):
    """Where a session is: cursor, line, event, losses, variables, optimizer, error."""

    id: str
    lesson: str
    config: Config
    cursor: int = Field(description="Events executed so far (0: nothing run yet).")
    done: bool
    iteration: int = Field(description="Loop counter of the iteration in progress; -1 before.")
    phase: Literal["setup", "forward", "loss", "backward", "update", "zero_grad", "done"]
    line: int | None = Field(description="1-based line of the lesson source that runs next.")
    event: Event
    losses: list[float | None] = Field(description="Loss of each iteration; null if not finite.")
    variables: dict[str, TensorSummary]
    optimizer: Optimizer | None
    error: LessonError | None
    scalars: dict[str, float | bool | None] | None = Field(
        default=None, description="Python numbers and booleans at module level (not config)."
    )
    frames: list[Frame] | None = Field(
        default=None, description="The lesson's active function frames, innermost last."
    )
    interrupted: Interrupted | None = Field(
        default=None,
        description="A step that stopped early, between events (its time limit, a cancel).",
    )
    edited: bool = Field(
        default=False, description="Does the session run a learner's edit of the lesson?"
    )
    output: str | None = Field(
        default=None,
        description=(
            "What an edited program has printed so far (its last 16 KiB); null for a lesson."
        ),
    )


class Source(_Out):
    """The program a session runs."""

    source: str
    edited: bool = Field(description="A learner's edit (POST /api/sessions with a source)?")
    changed: list[int] = Field(description="Lines of an edit that differ from the lesson's.")
    notes: dict[str, Note] = Field(
        description="The lesson's notes of the lines the edit keeps, by their line in `source`."
    )


class SavedTensor(_Out):
    name: str
    shape: list[int]
    version_saved: int
    version_now: int
    stale: bool = Field(description="Not yet run by backward, and changed since saved.")
    freed: bool | None = Field(default=None, description="Backward ran the node: released.")
    of: str | None = Field(default=None, description="The scope name of the saved tensor.")
    changed_at: int | None = Field(
        default=None, description="Cursor of the op event that changed it since it was saved."
    )


class Grad(_Out):
    """A gradient a backward node received or sent, with the actual values' top-left block."""

    shape: list[int]
    norm: float | None
    preview: list[list[float | None]] | None = Field(
        default=None, description="Top-left block (at most 4×4) of the values."
    )
    to: str | None = Field(default=None, description="The node it was sent to (sent ones).")


class Rule(_Out):
    en: str
    zh: str


class Accumulate(_Out):
    before: Grad | None = Field(description="`.grad` before (null: it was None).")
    after: Grad


class Example(_Out):
    text: str = Field(description="One element of a result worked out with the actual numbers.")
    value: float | None
    input: int = Field(description="Which of grad_inputs the element belongs to.")
    index: list[int]


class Ledger(_Out):
    """What a backward node did: what arrived, its rule, what it sent, one element."""

    node_id: str
    name: str
    rule: Rule
    grad_outputs: list[Grad | None] = Field(description="The hook's grad_outputs: arrived.")
    grad_inputs: list[Grad | None] = Field(description="The hook's grad_inputs: sent.")
    accumulate: Accumulate | None
    example: Example | None


class GraphNode(_Out):
    id: str = Field(description="Stable id; also the `id` of the node's group in graph.svg.")
    kind: Literal["function", "leaf", "saved", "output"]
    name: str
    shape: list[int] | None
    saved: list[SavedTensor]
    executed: bool = Field(description="Backward already ran this node.")
    tensors: list[str] | None = Field(
        default=None,
        description="Variables this node produced, holds (saved) or accumulates into.",
    )
    grad_inputs: list[Grad | None] | None = None
    grad_outputs: list[Grad | None] | None = None
    ledger: Ledger | None = None
    line: int | None = Field(default=None, description="The lesson line whose op made it.")
    grad_count: int | None = Field(default=None, description="AccumulateGrad: runs so far.")


class Edge(_Out):
    source: str
    target: str


class Graph(_Out):
    kind: Literal["autograd", "static", "none"]
    nodes: list[GraphNode]
    edges: list[Edge]
    focus: str | None = Field(description="Node of the current event.")


class StructureNode(BaseModel):
    """A node as a layout needs it (``app.engine.layout.structure``)."""

    id: str
    kind: Literal["function", "leaf", "saved", "output"]
    name: str
    line: int | None
    shape: list[int] | None
    grad_count: int | None


class Structure(BaseModel):
    """What a session's host looked ahead: the graph as the iteration will leave it."""

    kind: Literal["autograd", "static", "none"]
    nodes: list[StructureNode]
    edges: list[Edge]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FieldError(BaseModel):
    field: str
    detail: str


class ConfigCheck(BaseModel):
    """The answer of POST /api/lessons/{lesson}/config: whether a config would be accepted."""

    valid: bool = Field(description="Whether POST /api/sessions would accept this config.")
    config: dict[str, Any] | None = Field(
        description="The resolved config (defaults filled in) when valid, else null."
    )
    field: str | None = Field(description="The field at fault when invalid, else null.")
    detail: str | None = Field(description="What to change when invalid, else null.")
    errors: list[FieldError] = Field(
        default_factory=list, description="Every invalid field, the first one first."
    )


class CreateSession(_In):
    lesson: StrictStr = Field(description="A lesson id from GET /api/lessons.", examples=["nn"])
    config: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Settings to change from the lesson's defaults. Types are strict (no strings "
            "for numbers, no null, no fractions for integers) and unknown fields are refused."
        ),
        examples=[_CONFIG_EXAMPLE],
        json_schema_extra=_CONFIG_SCHEMA,
    )
    source: StrictStr | None = Field(
        default=None,
        description=(
            "A learner's version of the lesson's program, run in its place (at most 32 KiB "
            "of UTF-8, CPU only), where the server allows edited code (AGX_ALLOW_CODE, and "
            "every sandbox layer in force: /healthz); else 403 saying why. A syntax error "
            "answers 422 with its `line` and `column`."
        ),
    )

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"lesson": "autograd", "config": _CONFIG_EXAMPLE}]},
    )


class StepBody(_In):
    by: StepKind = Field(
        description=(
            "event: next event of any kind; line: next line; phase: next line of another "
            "phase; iteration: next start of the loop body; end: run to the end."
        ),
        examples=["event"],
    )
    count: StrictInt = Field(default=1, ge=1, le=MAX_COUNT, examples=[1])


class GradElement(_Out):
    node_id: str
    side: Literal["inputs", "outputs"]
    k: int = Field(description="Which of grad_inputs or grad_outputs.")
    index: list[int]
    shape: list[int]
    value: float | None = Field(description="The element; null where not finite.")


class GradcheckBody(_In):
    tensor: StrictStr = Field(description="A parameter, named as in `variables`.", examples=["w1"])
    index: list[StrictInt] = Field(description="The element, one index per dimension.")


class Gradcheck(_Out):
    tensor: str
    index: list[int]
    iteration: int
    analytic: float = Field(description="This iteration's gradient at the element.")
    numeric: float = Field(description="Central difference of this iteration's loss, float64.")
    eps: float
    rel_error: float
    negligible: bool = Field(description="|analytic| < 1e-2 · max |gradient|.")
    kink: bool = Field(description="The difference crossed a ReLU's kink.")
    grad: float = Field(description="The accumulated `.grad` at the element.")


class SeekBody(_In):
    cursor: StrictInt = Field(ge=0, description="Past the end gives the final state.")
