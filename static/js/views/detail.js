/**
 * The tensor detail panel: stats, histogram, a heatmap of the top-left block, its .grad;
 * on a parameter's gradient, each value is a button that checks it numerically.
 */

import { field, h, replace, svg } from "../dom.js";
import { index as written, num, precise, shape } from "../format.js";

const panel = /** @type {HTMLElement} */ (document.querySelector(".detail-panel"));

/** Relative error under which an analytic and a numeric gradient agree. */
const AGREE = 1e-3;

/** Arrow keys → the move they make in a grid of values: [rows, columns]. */
const MOVES = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };

/**
 * Wire the close button, the link to a tensor's .grad and the gradient check.
 * @param {{onOpen: (name: string) => void, onClose: () => void,
 *   onCheck: (tensor: string, index: number[]) => void}} handlers
 */
export function bind({ onOpen, onClose, onCheck }) {
  panel.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    if (button.dataset.action === "close-detail") onClose();
    else if (button.dataset.open) onOpen(button.dataset.open);
    else if (button.dataset.check) {
      rove(button);
      for (const other of button.closest("table").querySelectorAll("button[aria-current]")) other.removeAttribute("aria-current");
      button.setAttribute("aria-current", "true");
      onCheck(button.dataset.check, button.dataset.index.split(",").map(Number));
    }
  });
  panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape") onClose();
    const move = MOVES[event.key];
    const cell = event.target.closest?.("button[data-check]");
    if (!move || !cell) return;
    // The arrows move within the grid here, rather than step the program.
    event.preventDefault();
    const [i, j] = cell.dataset.cell.split(",").map(Number);
    const next = cell.closest("table").querySelector(`button[data-cell="${i + move[0]},${j + move[1]}"]`);
    if (next) {
      rove(next);
      next.focus();
    }
  });
}

/** Make `button` the one value of its grid that Tab reaches. */
function rove(button) {
  for (const other of button.closest("table").querySelectorAll("button[data-check]")) other.tabIndex = -1;
  button.tabIndex = 0;
}

/** Hide the panel. */
export function close() {
  panel.hidden = true;
}

/**
 * Show that the detail of `name` is on its way (or that it is gone).
 * @param {string} name
 * @param {string} [message]
 */
export function pending(name, message = "Loading…") {
  panel.hidden = false;
  field(panel, "detail-name").textContent = name;
  field(panel, "detail-body").replaceChildren(h("p", { class: "empty", text: message }));
}

/**
 * Show a TensorDetail.
 * @param {string} name the variable (or `<variable>.grad`)
 * @param {Object} t TensorDetail
 * @param {{check?: string|null}} [options] check: the parameter whose gradient these values
 *   are, to offer a numerical check of each one
 */
export function render(name, t, { check = null } = {}) {
  panel.hidden = false;
  field(panel, "detail-name").textContent = name;
  const stats = t.stats ?? {};
  const facts = [
    ["shape", shape(t.shape)],
    ["dtype", t.dtype],
    ["device", t.device],
    /** The version counter: how many in-place changes the tensor has seen. */
    ["version", String(t.version)],
    ["requires_grad", String(t.requires_grad)],
    ["is_leaf", String(t.is_leaf)],
    ["grad_fn", t.grad_fn ?? "None"],
    /** Summary statistics of all its elements. */
    ["min", num(stats.min)],
    ["max", num(stats.max)],
    ["mean", num(stats.mean)],
    ["std", num(stats.std)],
    ["norm", num(stats.norm)],
  ];
  const parts = [h("dl", { class: "facts two-col" }, ...facts.flatMap(([k, v]) => [h("dt", { text: k }), h("dd", { text: v })]))];
  if (t.histogram?.counts?.length) parts.push(h("h3", { text: "Histogram" }), histogram(t.histogram));
  if (t.preview !== undefined && t.preview !== null) {
    const checkable = check && Array.isArray(t.preview);
    parts.push(h("h3", { text: "Values (top-left block)" }));
    if (checkable) parts.push(h("p", { class: "check-hint", text: `Check this gradient: choose a value to compare it with a numerical derivative of the loss (arrow keys move between values).` }));
    parts.push(heatmap(t.preview, checkable ? { tensor: check, name } : null));
    if (checkable) parts.push(h("div", { class: "gradcheck", "data-field": "gradcheck", "aria-live": "polite" }));
  }
  if (t.grad) {
    parts.push(
      h("h3", { text: ".grad" }),
      h("p", {}, `norm ${num(t.grad.stats?.norm)}, mean ${num(t.grad.stats?.mean)}, version ${t.grad.version} `),
      h("button", { type: "button", class: "btn small", data: { open: `${name}.grad` }, text: `Show ${name}.grad` }),
    );
  } else if (t.requires_grad && t.is_leaf) {
    parts.push(h("h3", { text: ".grad" }), h("p", { class: "muted", text: "None: no backward pass has reached it yet, or it was set to None." }));
  }
  field(panel, "detail-body").replaceChildren(...parts);
}

/**
 * Bars of the 32-bin histogram, with the range under them.
 * @param {{edges: number[], counts: number[]}} hist
 */
function histogram({ edges, counts }) {
  const width = 320;
  const height = 80;
  const top = Math.max(...counts, 1);
  const bar = width / counts.length;
  const bars = counts.map((count, i) =>
    svg(
      "rect",
      { x: (i * bar + 0.5).toFixed(2), y: (height - (count / top) * height).toFixed(2), width: Math.max(bar - 1, 0.5).toFixed(2), height: ((count / top) * height).toFixed(2), class: "bar" },
      /** How many elements fall in [edges[i], edges[i+1]). */
      svg("title", { text: `[${num(edges[i])}, ${num(edges[i + 1])}): ${count}` }),
    ),
  );
  return h(
    "figure",
    { class: "histogram" },
    svg("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "none", role: "img", "aria-label": `Histogram of values from ${num(edges[0])} to ${num(edges.at(-1))}` }, ...bars),
    h("figcaption", {}, h("span", { text: num(edges[0]) }), h("span", { text: num(edges.at(-1)) })),
  );
}

/**
 * Say that the check of one element is on its way.
 * @param {string} tensor
 * @param {number[]} index
 */
export function checking(tensor, index) {
  const box = panel.querySelector('[data-field="gradcheck"]');
  if (!box) return;
  box.dataset.state = "pending";
  box.replaceChildren(h("p", { class: "muted", text: `Checking d loss / d ${tensor}${written(index)}: re-running this iteration's forward pass in float64…` }));
}

/**
 * Show the API's gradient check of one element, or the sentence why it cannot run now.
 * @param {Object|null} result the API's gradcheck answer
 * @param {string|null} [refusal] the API's sentence when it refused (409, 422)
 */
export function showCheck(result, refusal = null) {
  const box = panel.querySelector('[data-field="gradcheck"]');
  if (!box) return;
  if (!result) {
    box.dataset.state = "refused";
    box.replaceChildren(h("p", { class: "check-refused", "data-field": "check-refusal", text: refusal ?? "The check could not run." }));
    return;
  }
  const agree = result.rel_error < AGREE;
  box.dataset.state = agree ? "agree" : "differ";
  const rows = [
    /** analytic: this iteration's gradient at the element, as backward computed it. */
    ["analytic", result.analytic, "check-analytic", "backward's gradient of this iteration's loss"],
    /** numeric: (loss(w + ε) − loss(w − ε)) / 2ε, re-running the iteration in float64. */
    ["numeric", result.numeric, "check-numeric", `central difference, ε = ${precise(result.eps)}, float64`],
    /** rel_error: |analytic − numeric| / max(|analytic|, |numeric|). */
    ["relative error", result.rel_error, "check-rel-error", "|a − n| / max(|a|, |n|)"],
  ];
  if (result.grad !== result.analytic) {
    /** .grad at the element: with zero_grad off, the sum of every iteration's share so far. */
    rows.push(["accumulated .grad", result.grad, "check-grad", "includes earlier iterations' gradients"]);
  }
  const flags = [];
  if (result.kink) flags.push(h("li", { "data-field": "check-kink", text: "kink: the difference crossed a ReLU's corner, where the loss has no derivative; a gap there is expected, not a bug." }));
  if (result.negligible) flags.push(h("li", { "data-field": "check-negligible", text: "negligible: |analytic| is below 1 % of the largest |gradient|, so rounding dominates the relative error." }));
  const verdict = agree
    ? `They agree (relative error below ${precise(AGREE)}): backward computed this element of the chain rule correctly.`
    : result.kink || result.negligible
      ? "They differ, for the reason flagged below."
      : `They differ by more than ${precise(AGREE)} relative: worth a closer look.`;
  replace(
    box,
    /** The element checked and the training iteration whose loss was differentiated. */
    h("h4", { text: `d loss / d ${result.tensor}${written(result.index)} · iteration ${result.iteration}` }),
    h(
      "dl",
      { class: "facts" },
      ...rows.flatMap(([label, value, name, hint]) => [
        h("dt", { text: label }),
        h("dd", { "data-field": name, data: { value: String(value) }, title: hint }, precise(value), h("span", { class: "muted", text: ` · ${hint}` })),
      ]),
    ),
    h("p", { class: agree ? "verdict agree" : "verdict differ", text: verdict }),
    flags.length ? h("ul", { class: "check-flags" }, ...flags) : null,
  );
}

/**
 * The preview block as a table whose cells are tinted by sign and magnitude.
 * @param {number|number[]|number[][]} preview at most 8×8 values
 * @param {{tensor: string, name: string}|null} check the parameter whose gradient these are:
 *   each value becomes a button that checks it
 */
function heatmap(preview, check = null) {
  const rows = Array.isArray(preview) ? (Array.isArray(preview[0]) ? preview : [preview]) : [[preview]];
  const vector = Array.isArray(preview) && !Array.isArray(preview[0]);
  const flat = rows.flat(Infinity).filter((v) => typeof v === "number" && Number.isFinite(v));
  const scale = Math.max(...flat.map(Math.abs), 1e-30);
  return h(
    "div",
    // It scrolls sideways when the block is wider than the panel: it takes the focus then.
    { class: "heatmap-wrap", tabindex: "0", role: "region", "aria-label": "Values of the top-left block" },
    h(
      "table",
      { class: "heatmap" },
      h(
        "tbody",
        {},
        ...rows.map((values, i) =>
          h(
            "tr",
            {},
            ...(Array.isArray(values) ? values : [values]).map((value, j) => {
              const cell = h("td", { class: typeof value === "number" && value < 0 ? "neg" : "pos", title: String(value) });
              if (check) {
                const element = vector ? [j] : [i, j];
                cell.append(
                  h("button", {
                    type: "button",
                    class: "cell",
                    tabindex: i === 0 && j === 0 ? "0" : "-1",
                    data: { check: check.tensor, index: element.join(","), cell: `${i},${j}` },
                    "aria-label": `${check.name}${written(element)} = ${precise(value)}: check this gradient`,
                    text: num(value),
                  }),
                );
              } else cell.textContent = num(value);
              if (typeof value === "number" && Number.isFinite(value)) {
                cell.style.setProperty("--a", (Math.abs(value) / scale).toFixed(3));
              }
              return cell;
            }),
          ),
        ),
      ),
    ),
  );
}
