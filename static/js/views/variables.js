/**
 * The variables panel: one row per tensor in scope, marking what the last step changed.
 * While a lesson function runs, its frame is drawn apart from the globals, as Python Tutor
 * does: a section per active frame with its locals (tensors and numbers).
 */

import { field, h } from "../dom.js";
import { num, scalar, shape } from "../format.js";

const panel = /** @type {HTMLElement} */ (document.querySelector(".vars-panel"));
const table = /** @type {HTMLTableElement} */ (panel.querySelector('[data-testid="variables"]'));
/** Columns of the table, for the rows that span it. */
const COLUMNS = 5;

/**
 * Wire row selection, and hovering a row (linked views).
 * @param {{onSelect: (name: string) => void, onHover?: (name: string|null) => void}} handlers
 */
export function bind({ onSelect, onHover = () => {} }) {
  table.addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-name]");
    if (row) onSelect(row.dataset.name);
  });
  let hovered = null;
  const hover = (name) => {
    if (name !== hovered) onHover((hovered = name));
  };
  table.addEventListener("mouseover", (event) => hover(event.target.closest?.("tr[data-name]")?.dataset.name ?? null));
  table.addEventListener("mouseleave", () => hover(null));
  table.addEventListener("focusin", (event) => hover(event.target.closest?.("tr[data-name]")?.dataset.name ?? null));
  table.addEventListener("focusout", () => hover(null));
}

/**
 * @typedef {Object} Frame a State `frames` entry: an active function of the lesson
 * @property {string} function its qualified name, e.g. DynamicNet.forward
 * @property {number} line the line it is at
 * @property {Object<string, Object>} variables its tensor locals, name → TensorSummary
 * @property {Object<string, number|boolean|null>} scalars its number and boolean locals
 */

/**
 * Show the variables of the current state.
 * @param {Object<string, Object>} variables name → TensorSummary, now (the innermost
 *   frame's locals included, as the API gives them)
 * @param {Object<string, Object>|null} before the same one step earlier (null: mark nothing)
 * @param {string|null} selected the variable whose details are open
 * @param {Frame[]} [frames] the active lesson functions, innermost last
 * @param {Set<string>} [linked] variables another view points at (a graph node's tensors)
 */
export function render(variables, before, selected, frames = [], linked = new Set()) {
  const innermost = frames.at(-1);
  const locals = new Set(Object.keys(innermost?.variables ?? {}).filter((name) => name in variables));
  const make = (name, summary) => row(name, summary, before, selected, linked.has(name));
  const globals = Object.entries(variables).filter(([name]) => !locals.has(name));
  const sections = [
    h(
      "tbody",
      { class: "frame-globals", data: { frame: "globals" } },
      frames.length ? head("Global frame", "module-level names of the lesson") : null,
      ...globals.map(([name, summary]) => make(name, summary)),
    ),
    ...frames.map((frame, depth) =>
      h(
        "tbody",
        { class: "frame", data: { frame: frame.function, depth: String(depth + 1) } },
        /** The line the frame is at: for the innermost, the line that runs next. */
        head(frame.function, `line ${frame.line}`),
        ...Object.entries(frame.scalars ?? {}).map(([name, value]) => scalarRow(name, value)),
        ...Object.entries(frame.variables ?? {}).map(([name, summary]) =>
          frame === innermost && locals.has(name) ? make(name, variables[name]) : outerRow(name, summary),
        ),
      ),
    ),
  ];
  // The rows are rebuilt: a row (or its button) that had the keyboard focus gets it back.
  const focused = table.contains(document.activeElement) ? document.activeElement.closest("tr[data-name], tr[data-local]") : null;
  const key = focused ? (focused.dataset.name !== undefined ? `tr[data-name="${CSS.escape(focused.dataset.name)}"]` : `tr[data-local="${CSS.escape(focused.dataset.local)}"]`) : null;
  table.querySelectorAll("tbody").forEach((old) => old.remove());
  table.append(...sections);
  if (key) {
    const again = table.querySelector(key);
    (again?.querySelector("button") ?? again ?? panel.querySelector(".table-wrap"))?.focus({ preventScroll: true });
  }
  field(panel, "vars-empty").hidden = Object.keys(variables).length > 0 || frames.length > 0;
}

/**
 * Highlight the rows of the variables another view points at.
 * @param {Set<string>} names
 */
export function link(names) {
  for (const tr of table.querySelectorAll("tr[data-name]")) tr.classList.toggle("linked", names.has(tr.dataset.name));
}

/** The heading row of a frame's section. */
function head(title, meta) {
  return h("tr", { class: "frame-head" }, h("th", { scope: "rowgroup", colspan: COLUMNS }, h("span", { class: "frame-name", text: title }), h("span", { class: "frame-meta", text: ` · ${meta}` })));
}

/** A number or boolean local of a frame: name = value. */
function scalarRow(name, value) {
  return h(
    "tr",
    { class: "scalar-row", data: { local: name } },
    h("th", { scope: "row", text: name }),
    /** The local's value, as Python would print it (six significant digits). */
    h("td", { colspan: COLUMNS - 1, title: String(value), text: `= ${scalar(value)}` }),
  );
}

/** A tensor local of an outer frame: shown, not selectable (the API opens the innermost scope's). */
function outerRow(name, t) {
  return h(
    "tr",
    { class: "outer-local", data: { local: name } },
    h("th", { scope: "row", text: name }),
    h("td", { text: shape(t.shape) }),
    h("td", { text: String(t.version) }),
    h("td", {}, ...fnName(t.grad_fn)),
    h("td", { text: t.grad ? num(t.grad.stats?.norm) : "–" }),
  );
}

/**
 * @param {string} name
 * @param {Object} t TensorSummary
 * @param {Object<string, Object>|null} before
 * @param {string|null} selected
 * @param {boolean} isLinked another view points at it
 */
function row(name, t, before, selected, isLinked) {
  const old = before ? before[name] : undefined;
  const isNew = before !== null && old === undefined;
  const changed = {
    version: old !== undefined && old.version !== t.version,
    values: old !== undefined && !sameStats(old.stats, t.stats),
    grad: old !== undefined && !sameStats(old.grad?.stats, t.grad?.stats),
    grad_fn: old !== undefined && old.grad_fn !== t.grad_fn,
  };
  const any = isNew || Object.values(changed).some(Boolean);
  const what = isNew ? "new" : Object.keys(changed).filter((k) => changed[k]).join(", ");
  const cell = (text, hot = false, title = null) => h("td", { class: hot ? "hot" : null, title, text });
  const classes = [any && "changed", isNew && "is-new", name === selected && "selected", isLinked && "linked"].filter(Boolean);
  return h(
    "tr",
    {
      class: classes.join(" ") || null,
      data: { name, version: String(t.version) },
      "aria-selected": name === selected ? "true" : null,
    },
    h(
      "th",
      { scope: "row", class: changed.values || isNew ? "hot" : null },
      h(
        "span",
        { class: "var-name" },
        h("button", { type: "button", class: "link", "aria-expanded": String(name === selected) }, ...breakable(name)),
        any ? h("span", { class: "changed-mark", title: `changed: ${what}` }, h("span", { class: "sr-only", text: `changed: ${what}` })) : null,
      ),
      /** Element type (torch.float32, or float64 for NumPy arrays), where the tensor lives,
       * and requires_grad: "leaf" (a leaf that requires grad: its .grad fills), "computed"
       * (computed from one: it has a grad_fn), nothing when autograd does not track it. */
      h("span", { class: "var-type", text: `${t.dtype.replace("torch.", "")} · ${t.device}${tracked(t)}` }),
    ),
    /** The tensor's shape, e.g. 64×1000. */
    cell(shape(t.shape)),
    /** The version counter (_version): +1 on every in-place change. */
    cell(String(t.version), changed.version, "version counter"),
    /** grad_fn: the backward node that produced it (null for leaves and plain tensors). */
    h("td", { class: changed.grad_fn ? "hot" : null }, ...fnName(t.grad_fn)),
    /** The L2 norm of its .grad, or – when .grad is None. */
    cell(t.grad ? num(t.grad.stats?.norm) : "–", changed.grad, t.grad ? ".grad norm" : ".grad is None"),
  );
}

/** A dotted name (model.middle_linear.weight) as text that may break after its dots and
 * underscores, so that the longest names take two lines of the name column, not three. */
function breakable(name) {
  return name.split(/(?<=[._])/).flatMap((part, i) => (i ? [h("wbr"), part] : [part]));
}

/** A grad_fn (AddmmBackward0) that may break before "Backward"; – for none. */
function fnName(name) {
  if (!name) return ["–"];
  const at = name.indexOf("Backward");
  return at > 0 ? [name.slice(0, at), h("wbr"), name.slice(at)] : [name];
}

/** What requires_grad means for a tensor, after its dtype and device. */
function tracked(t) {
  if (!t.requires_grad) return "";
  return t.is_leaf ? " · leaf" : " · computed";
}

function sameStats(a, b) {
  if (!a || !b) return !a && !b;
  return a.norm === b.norm && a.mean === b.mean && a.min === b.min && a.max === b.max;
}
