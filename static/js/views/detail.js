/** The tensor detail panel: stats, histogram, a heatmap of the top-left block, its .grad. */

import { field, h, svg } from "../dom.js";
import { num, shape } from "../format.js";

const panel = /** @type {HTMLElement} */ (document.querySelector(".detail-panel"));

/**
 * Wire the close button and the link to a tensor's .grad.
 * @param {{onOpen: (name: string) => void, onClose: () => void}} handlers
 */
export function bind({ onOpen, onClose }) {
  panel.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (!button) return;
    if (button.dataset.action === "close-detail") onClose();
    else if (button.dataset.open) onOpen(button.dataset.open);
  });
  panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape") onClose();
  });
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
 */
export function render(name, t) {
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
    parts.push(h("h3", { text: "Values (top-left block)" }), heatmap(t.preview));
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
 * The preview block as a table whose cells are tinted by sign and magnitude.
 * @param {number|number[]|number[][]} preview at most 8×8 values
 */
function heatmap(preview) {
  const rows = Array.isArray(preview) ? (Array.isArray(preview[0]) ? preview : [preview]) : [[preview]];
  const flat = rows.flat(Infinity).filter((v) => typeof v === "number" && Number.isFinite(v));
  const scale = Math.max(...flat.map(Math.abs), 1e-30);
  return h(
    "div",
    { class: "heatmap-wrap" },
    h(
      "table",
      { class: "heatmap" },
      h(
        "tbody",
        {},
        ...rows.map((values) =>
          h(
            "tr",
            {},
            ...(Array.isArray(values) ? values : [values]).map((value) => {
              const cell = h("td", { class: typeof value === "number" && value < 0 ? "neg" : "pos", text: num(value), title: String(value) });
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
