/** The variables panel: one row per tensor in scope, marking what the last step changed. */

import { field, h } from "../dom.js";
import { num, shape } from "../format.js";

const panel = /** @type {HTMLElement} */ (document.querySelector(".vars-panel"));
const body = /** @type {HTMLTableSectionElement} */ (panel.querySelector("tbody"));

/**
 * Wire row selection.
 * @param {{onSelect: (name: string) => void}} handlers
 */
export function bind({ onSelect }) {
  body.addEventListener("click", (event) => {
    const row = event.target.closest("tr[data-name]");
    if (row) onSelect(row.dataset.name);
  });
}

/**
 * Show the variables of the current state.
 * @param {Object<string, Object>} variables name → TensorSummary, now
 * @param {Object<string, Object>|null} before the same one step earlier (null: mark nothing)
 * @param {string|null} selected the variable whose details are open
 */
export function render(variables, before, selected) {
  const rows = Object.entries(variables).map(([name, summary]) => row(name, summary, before, selected));
  body.replaceChildren(...rows);
  field(panel, "vars-empty").hidden = rows.length > 0;
}

/**
 * @param {string} name
 * @param {Object} t TensorSummary
 * @param {Object<string, Object>|null} before
 * @param {string|null} selected
 */
function row(name, t, before, selected) {
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
  const classes = [any && "changed", isNew && "is-new", name === selected && "selected"].filter(Boolean);
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
      /** Element type (torch.float32, or float64 for NumPy arrays) and where the tensor lives. */
      h("span", { class: "var-type", text: `${t.dtype.replace("torch.", "")} · ${t.device}` }),
    ),
    /** The tensor's shape, e.g. 64×1000. */
    cell(shape(t.shape)),
    /** The version counter (_version): +1 on every in-place change. */
    cell(String(t.version), changed.version, "version counter"),
    /** requires_grad: whether autograd records operations on it. */
    cell(t.requires_grad ? (t.is_leaf ? "leaf" : "yes") : "–", false, t.requires_grad ? (t.is_leaf ? "requires_grad, a leaf" : "requires_grad, computed") : "no gradient tracked"),
    /** grad_fn: the backward node that produced it (null for leaves and plain tensors). */
    cell(t.grad_fn ?? "–", changed.grad_fn),
    /** The L2 norm of its .grad, or – when .grad is None. */
    cell(t.grad ? num(t.grad.stats?.norm) : "–", changed.grad, t.grad ? ".grad norm" : ".grad is None"),
  );
}

/** A dotted name (model.0.weight) as text with line-break opportunities after the dots. */
function breakable(name) {
  return name.split(/(?<=\.)/).flatMap((part, i) => (i ? [h("wbr"), part] : [part]));
}

function sameStats(a, b) {
  if (!a || !b) return !a && !b;
  return a.norm === b.norm && a.mean === b.mean && a.min === b.min && a.max === b.max;
}
