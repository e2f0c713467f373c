/** The graph panel: the server's SVG with pan and zoom, node states, and node details. */

import { field, h } from "../dom.js";
import { num, shape } from "../format.js";
import { svgPanZoom } from "../vendor.js";

const panel = /** @type {HTMLElement} */ (document.querySelector(".graph-panel"));
const box = /** @type {HTMLElement} */ (panel.querySelector('[data-testid="graph"]'));
const info = /** @type {HTMLElement} */ (panel.querySelector(".node-info"));

/** The markup on screen without its class attributes, to skip re-parsing an SVG that
 * differs only in the node states, which render() sets from the Graph JSON anyway. */
let shownSvg = "";
/** @type {Map<string, SVGGElement>} node id → its group in the SVG */
let groups = new Map();
/** The svg-pan-zoom instance of the SVG on screen. */
let panZoom = null;
/** Whether the user moved the view; if not, each new graph is fitted to the panel. */
let userMoved = false;
/** Whether a pan or zoom comes from this module rather than the user. */
let moving = false;
/** Ids of the nodes another view links to (a variable's nodes, a code line's nodes). */
let linked = new Set();

/**
 * Wire node selection and the zoom buttons.
 * @param {{onSelect: (id: string|null) => void, onHover?: (id: string|null) => void}} handlers
 */
export function bind({ onSelect, onHover = () => {} }) {
  // Hover and keyboard focus both say "this node": the linked views follow either.
  let hovered = null;
  const hover = (id) => {
    if (id !== hovered) onHover((hovered = id));
  };
  box.addEventListener("mouseover", (event) => hover(event.target.closest?.("g.node")?.id ?? null));
  box.addEventListener("mouseleave", () => hover(null));
  box.addEventListener("focusin", (event) => hover(event.target.closest?.("g.node")?.id ?? null));
  box.addEventListener("focusout", () => hover(null));
  box.addEventListener("click", (event) => {
    const group = event.target.closest?.("g.node");
    if (group) onSelect(group.id);
  });
  // NOTE: svg-pan-zoom cancels touchstart (to pan), so a tap makes no click: a touch or
  // pen that lifts on the node it went down on, without moving, selects it.
  let press = null;
  box.addEventListener("pointerdown", (event) => {
    press = { id: event.target.closest?.("g.node")?.id, x: event.clientX, y: event.clientY };
  });
  box.addEventListener("pointerup", (event) => {
    const id = event.target.closest?.("g.node")?.id;
    const still = press && Math.hypot(event.clientX - press.x, event.clientY - press.y) < 8;
    if (event.pointerType !== "mouse" && id && still && id === press.id) onSelect(id);
    press = null;
  });
  panel.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !info.hidden) onSelect(null);
  });
  box.addEventListener("keydown", (event) => {
    const group = event.target.closest?.("g.node");
    if (group && (event.key === "Enter" || event.key === " ")) {
      event.preventDefault();
      onSelect(group.id);
    }
  });
  info.querySelector('[data-action="close-node"]').addEventListener("click", () => onSelect(null));
  panel.querySelector(".panel-tools").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-zoom]");
    if (!button || !panZoom) return;
    const how = button.dataset.zoom;
    if (how === "fit") {
      userMoved = false;
      fit();
    } else {
      userMoved = true;
      programmatic(() => (how === "in" ? panZoom.zoomIn() : panZoom.zoomOut()));
    }
  });
  new ResizeObserver(() => {
    // A zero-sized panel (mid-layout, or hidden) would give svg-pan-zoom a zoom of 0.
    if (!panZoom || !box.clientWidth || !box.clientHeight) return;
    programmatic(() => panZoom.resize());
    if (!userMoved) fit();
  }).observe(box);
}

/**
 * Show the graph of the current state.
 * @param {Object} graph the API's Graph JSON
 * @param {string|null} markup the API's graph.svg (null: the one on screen)
 * @param {string|null} selected id of the node whose details are open
 */
export function render(graph, markup, selected) {
  /** What the graph is: the autograd graph in scope, the captured static graph, or none. */
  const kind = field(panel, "graph-kind");
  kind.textContent = graph.kind === "static" ? "static graph" : graph.kind === "none" ? "empty" : "autograd graph";
  kind.className = `chip kind-${graph.kind}`;
  const empty = !graph.nodes.length;
  field(panel, "graph-empty").hidden = !empty;
  box.classList.toggle("is-empty", empty);

  const shape = markup === null ? shownSvg : markup.replace(/ class="[^"]*"/g, "");
  if (shape !== shownSvg) {
    show(markup);
    shownSvg = shape;
  }
  const byId = new Map(graph.nodes.map((node) => [node.id, node]));
  for (const [id, group] of groups) {
    const node = byId.get(id);
    if (node) group.classList.add(`kind-${node.kind}`);
    group.classList.toggle("executed", Boolean(node?.executed));
    // Run by an earlier backward call (its ledger gone, its buffers freed): muted.
    group.classList.toggle("freed", Boolean(node?.executed && node.kind === "function" && !node.ledger && !node.id.startsWith("acc:")));
    group.classList.toggle("stale", Boolean(node?.saved?.some((s) => s.stale)));
    group.classList.toggle("focus", id === graph.focus);
    group.classList.toggle("selected", id === selected);
    group.classList.toggle("linked", linked.has(id));
    group.setAttribute("aria-pressed", String(id === selected));
  }
  if (graph.focus && userMoved) keepInView(groups.get(graph.focus));
  renderInfo(selected ? byId.get(selected) : null);
}

/**
 * Highlight the nodes another view points at (the others lose the highlight).
 * @param {Iterable<string>} ids node ids
 */
export function link(ids) {
  linked = new Set(ids);
  for (const [id, group] of groups) group.classList.toggle("linked", linked.has(id));
}

/** Replace the SVG on screen, keeping the user's pan and zoom if they set one. */
function show(markup) {
  const previous = panZoom && userMoved ? { zoom: panZoom.getZoom(), pan: panZoom.getPan() } : null;
  panZoom?.destroy();
  panZoom = null;
  groups = new Map();
  const svgElement = parse(markup);
  box.replaceChildren(...(svgElement ? [svgElement] : []));
  if (!svgElement) return;
  for (const group of svgElement.querySelectorAll("g.node[id]")) {
    group.setAttribute("tabindex", "0");
    group.setAttribute("role", "button");
    const title = group.querySelector("title")?.textContent ?? group.id;
    group.setAttribute("aria-label", title);
    groups.set(group.id, /** @type {SVGGElement} */ (group));
  }
  // NOTE: svg-pan-zoom writes style="overflow: hidden" with setAttribute unless the
  // style already mentions overflow, which the CSP (style-src 'self') would refuse.
  svgElement.style.setProperty("overflow", "hidden");
  programmatic(() => {
    panZoom = svgPanZoom(svgElement, {
    controlIconsEnabled: false,
    dblClickZoomEnabled: false,
    zoomScaleSensitivity: 0.25,
    minZoom: 0.1,
    maxZoom: 20,
    fit: true,
    center: true,
    onZoom: () => {
      if (!moving) userMoved = true;
    },
    onPan: () => {
      if (!moving) userMoved = true;
    },
    });
  });
  if (previous) {
    programmatic(() => {
      panZoom.zoom(previous.zoom);
      panZoom.pan(previous.pan);
    });
  }
}

/**
 * The server's SVG as a node of this document, without scripts or event handlers.
 * @param {string} markup
 * @returns {SVGSVGElement|null}
 */
function parse(markup) {
  if (!markup) return null;
  const doc = new DOMParser().parseFromString(markup, "image/svg+xml");
  const root = doc.documentElement;
  if (root.nodeName !== "svg" || doc.querySelector("parsererror")) return null;
  for (const bad of root.querySelectorAll("script, foreignObject, style")) bad.remove();
  for (const element of [root, ...root.querySelectorAll("*")]) {
    for (const attribute of [...element.attributes]) {
      const name = attribute.name.toLowerCase();
      if (name.startsWith("on") || name === "style") element.removeAttribute(attribute.name);
      else if (name.endsWith("href") && !attribute.value.startsWith("#")) element.removeAttribute(attribute.name);
    }
  }
  root.removeAttribute("width");
  root.removeAttribute("height");
  root.setAttribute("focusable", "false");
  return /** @type {SVGSVGElement} */ (document.importNode(root, true));
}

function programmatic(action) {
  moving = true;
  try {
    action();
  } finally {
    moving = false;
  }
}

function fit() {
  if (!panZoom || !box.clientWidth || !box.clientHeight) return;
  programmatic(() => {
    panZoom.updateBBox();
    panZoom.fit();
    panZoom.center();
  });
}

/** Pan so that `group` is inside the panel, if it is not. */
function keepInView(group) {
  if (!group || !panZoom) return;
  const area = box.getBoundingClientRect();
  const node = group.getBoundingClientRect();
  const inside = node.left >= area.left && node.right <= area.right && node.top >= area.top && node.bottom <= area.bottom;
  if (inside) return;
  const dx = area.left + area.width / 2 - (node.left + node.width / 2);
  const dy = area.top + area.height / 2 - (node.top + node.height / 2);
  programmatic(() => panZoom.panBy({ x: dx, y: dy }));
}

/**
 * Show the details of one node: what it is, what it saved, what backward gave it.
 * @param {Object|undefined|null} node a node of the Graph JSON
 */
function renderInfo(node) {
  info.hidden = !node;
  if (!node) return;
  field(info, "node-name").textContent = node.name;
  const rows = [
    ["kind", node.kind],
    ["shape", shape(node.shape)],
  ];
  if (node.tensors?.length) rows.push(["variables", node.tensors.join(", ")]);
  /** The lesson line whose forward op created the node (marked in the code panel). */
  if (node.line) rows.push(["created on", `line ${node.line}`]);
  if (node.kind === "function") rows.push(["executed", node.executed ? "yes: backward ran it" : "not yet"]);
  /** Gradients an AccumulateGrad receives in one backward pass: one per use of its leaf. */
  if (node.grad_count !== undefined) rows.push(["gradients per pass", String(node.grad_count)]);
  const body = [h("dl", { class: "facts" }, ...rows.flatMap(([k, v]) => [h("dt", { text: k }), h("dd", { text: v })]))];

  if (node.saved?.length) {
    body.push(
      h("h4", { text: "Saved for backward" }),
      table(
        ["tensor", "shape", "version saved", "version now"],
        node.saved.map((s) => ({
          class: s.stale ? "stale" : "",
          /** version_saved: the tensor's version counter when autograd saved it; version_now: today's. */
          cells: [s.name, shape(s.shape), String(s.version_saved), s.stale ? `${s.version_now} (modified in place)` : String(s.version_now)],
        })),
      ),
    );
  }
  if (node.executed && (node.grad_inputs?.length || node.grad_outputs?.length)) {
    /** Shape and L2 norm of each gradient flowing into (grad_outputs) and out of (grad_inputs) the node. */
    body.push(h("h4", { text: "Gradients" }), table(["", "shape", "norm"], [
      ...gradRows("into the node", node.grad_outputs),
      ...gradRows("out to its inputs", node.grad_inputs),
    ]));
  } else if (node.executed) {
    body.push(h("p", { class: "muted", text: "Its gradients are listed while backward runs: step through backward event by event." }));
  }
  field(info, "node-body").replaceChildren(...body);
}

function gradRows(label, grads = []) {
  return grads.map((g, i) => ({ cells: [`${label} #${i}`, g ? shape(g.shape) : "none", g ? num(g.norm) : "–"] }));
}

function table(headings, rows) {
  return h(
    "table",
    { class: "mini" },
    h("thead", {}, h("tr", {}, ...headings.map((text) => h("th", { scope: "col", text })))),
    h("tbody", {}, ...rows.map((row) => h("tr", { class: row.class || null }, ...row.cells.map((text) => h("td", { text }))))),
  );
}
