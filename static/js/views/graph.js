/**
 * The graph panel: the graph drawn from the Graph JSON and the server's layout
 * (GET .../graph/view, or a step's `view`), with pan and zoom, node states, edge labels,
 * an overview of the whole, and node details.
 *
 * NOTE: the server lays out the iteration's whole structure (app.engine.layout.layout,
 * looked ahead on a copy of the program where the session's host can fork one, else the
 * previous iteration's): a node keeps its place while the structure stands, and a node
 * of the next iteration takes its twin's place. The page draws each node once and moves it (a CSS transition
 * of its transform, FLIP) only when the structure changes; no node moves when another
 * appears. Text is drawn at fixed sizes and the default view never zooms below 1, so a
 * label in sight is never smaller than its size in CSS px.
 */

import { field, h, svg } from "../dom.js";
import { num, shape } from "../format.js";

const panel = /** @type {HTMLElement} */ (document.querySelector(".graph-panel"));
const box = /** @type {HTMLElement} */ (panel.querySelector('[data-testid="graph"]'));
const info = /** @type {HTMLElement} */ (panel.querySelector(".node-info"));
const legend = /** @type {HTMLElement|null} */ (panel.querySelector(".legend"));

/** The smallest zoom of the default view: labels (12 and 14 units) stay ≥ 12 CSS px. */
const READABLE_ZOOM = 1;
/** The largest zoom a small graph is fitted at. */
const MAX_FIT_ZOOM = 1.5;
const MIN_ZOOM = 0.1;
const MAX_ZOOM = 8;
/** Room around the graph when it is fitted (CSS px). */
const MARGIN = 16;

/** @type {SVGSVGElement|null} the drawing */
let root = null;
/** @type {SVGGElement|null} the pan-and-zoom group */
let viewport = null;
/** @type {SVGGElement|null} */
let edgeLayer = null;
/** @type {SVGGElement|null} */
let nodeLayer = null;
/** @type {Map<string, SVGGElement>} node id → its group */
let groups = new Map();
/** @type {Map<string, SVGGElement>} edge id → its group */
let edgeGroups = new Map();
/** The layout on screen (the server's), and the graph JSON. */
let shownLayout = null;
let shownGraph = null;
/** The view transform: screen = zoom · point + (x, y). */
let view = { zoom: 1, x: 0, y: 0 };
/** Whether the user moved the view; until then the view follows the current node. */
let userMoved = false;
/** Ids of the nodes another view links to (a variable's nodes, a code line's nodes). */
let linked = new Set();
/** The overview: the whole graph as shapes, with the part in sight outlined. */
let overview = null;

/**
 * Wire node selection, pan and zoom, and the zoom buttons.
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
  box.addEventListener("focusin", (event) => {
    const group = event.target.closest?.("g.node");
    hover(group?.id ?? null);
    if (group) reveal(group);
  });
  box.addEventListener("focusout", () => hover(null));
  box.addEventListener("click", (event) => {
    if (dragged) return;
    const group = event.target.closest?.("g.node");
    if (group) onSelect(group.id);
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
    if (!button || !root) return;
    const how = button.dataset.zoom;
    if (how === "fit") {
      // The whole graph, however small its labels get; stepping goes back to following.
      userMoved = false;
      fitAll();
    } else {
      userMoved = true;
      zoomAround(how === "in" ? 1.25 : 0.8, box.clientWidth / 2, box.clientHeight / 2, true);
    }
  });
  bindPanZoom();
  new ResizeObserver(() => {
    if (!root || !box.clientWidth || !box.clientHeight) return;
    if (!userMoved) home(false);
    else drawOverview();
  }).observe(box);
}

/** Whether the pointer moved between press and release (a pan, not a click). */
let dragged = false;

function bindPanZoom() {
  let press = null;
  box.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    press = { x: event.clientX, y: event.clientY, vx: view.x, vy: view.y, id: event.pointerId, node: event.target.closest?.("g.node")?.id };
    dragged = false;
  });
  box.addEventListener("pointermove", (event) => {
    if (!press || event.pointerId !== press.id) return;
    const dx = event.clientX - press.x;
    const dy = event.clientY - press.y;
    if (!dragged && Math.hypot(dx, dy) < 4) return;
    if (!dragged) box.setPointerCapture(event.pointerId);
    dragged = true;
    userMoved = true;
    setView({ zoom: view.zoom, x: press.vx + dx, y: press.vy + dy }, false);
  });
  const release = (event) => {
    if (!press || event.pointerId !== press.id) return;
    press = null;
    // the click that follows a drag is not a selection
    setTimeout(() => (dragged = false), 0);
  };
  box.addEventListener("pointerup", release);
  box.addEventListener("pointercancel", release);
  box.addEventListener(
    "wheel",
    (event) => {
      if (!root) return;
      event.preventDefault();
      userMoved = true;
      const area = box.getBoundingClientRect();
      const factor = Math.exp(-event.deltaY * (event.deltaMode === 1 ? 0.05 : 0.0015));
      zoomAround(factor, event.clientX - area.left, event.clientY - area.top, false);
    },
    { passive: false },
  );
}

/**
 * Show the graph of the current state.
 * @param {Object} graph the API's Graph JSON
 * @param {Object|null} layout the API's layout of it (null: the one on screen)
 * @param {string|null} selected id of the node whose details are open
 */
export function render(graph, layout, selected) {
  /** What the graph is: the autograd graph in scope, the captured static graph, or none. */
  const kind = field(panel, "graph-kind");
  kind.textContent = graph.kind === "static" ? "static graph" : graph.kind === "none" ? "empty" : "autograd graph";
  kind.className = `chip kind-${graph.kind}`;
  const empty = !graph.nodes.length;
  field(panel, "graph-empty").hidden = !empty;
  box.classList.toggle("is-empty", empty);
  box.dataset.kind = graph.kind;
  showLegend(graph.kind);

  const structureChanged = layout !== null && layout.key !== shownLayout?.key;
  if (layout !== null) draw(graph, layout);
  shownGraph = graph;
  paint(graph, selected);
  if (layout !== null) {
    if (!userMoved) home(structureChanged || Boolean(graph.focus));
    else if (graph.focus) keepInView(groups.get(graph.focus));
    drawOverview();
  }
  renderInfo(selected ? graph.nodes.find((n) => n.id === selected) : null);
}

/**
 * Highlight the nodes another view points at (the others lose the highlight).
 * @param {Iterable<string>} ids node ids
 */
export function link(ids) {
  linked = new Set(ids);
  for (const [id, group] of groups) group.classList.toggle("linked", linked.has(id));
}

// -- drawing -----------------------------------------------------------------------

function ensureRoot() {
  if (root) return;
  root = /** @type {SVGSVGElement} */ (svg("svg", { class: "graph-svg", focusable: "false" }));
  viewport = /** @type {SVGGElement} */ (svg("g", { class: "viewport" }));
  edgeLayer = /** @type {SVGGElement} */ (svg("g", { class: "edges" }));
  nodeLayer = /** @type {SVGGElement} */ (svg("g", { class: "nodes" }));
  viewport.append(edgeLayer, nodeLayer);
  root.append(viewport);
  box.replaceChildren(root);
  setView(view, false);
}

/** @type {Map<string, number>} node id → edges leaving it in the layout drawn */
let usesById = new Map();

/** The lines written in a node. */
function labelLines(node, uses) {
  if (node.kind === "function") {
    const lines = [String(node.name).replace(/^torch::autograd::/, "")];
    if (uses > 1) lines.push(`×${uses}`);
    return lines;
  }
  if (node.shape) return [node.name, `(${node.shape.join(", ")})`];
  return [node.name];
}

/**
 * Put every node and edge of `layout` on screen: a node already drawn keeps its group
 * and moves to its new place (a transition when the place changed); a new one fades in.
 */
function draw(graph, layout) {
  ensureRoot();
  const byId = new Map(graph.nodes.map((node) => [node.id, node]));
  const uses = new Map();
  for (const edge of layout.edges) uses.set(edge.source, (uses.get(edge.source) ?? 0) + 1);
  usesById = uses;

  const keep = new Set();
  for (const [id, [cx, cy, w, hgt]] of Object.entries(layout.nodes)) {
    const node = byId.get(id);
    if (!node) continue;
    keep.add(id);
    let group = groups.get(id);
    const lines = labelLines(node, id.startsWith("acc:") ? uses.get(id) ?? 0 : 0);
    const signature = `${w}|${hgt}|${lines.join("\n")}`;
    if (!group) {
      group = /** @type {SVGGElement} */ (svg("g", { id, class: "node", tabindex: "0", role: "button" }));
      group.classList.add("entering");
      groups.set(id, group);
      nodeLayer.append(group);
      group.style.transform = `translate(${cx}px, ${cy}px)`;
      requestAnimationFrame(() => group.classList.remove("entering"));
    } else if (group.dataset.at !== `${cx},${cy}`) {
      group.style.transform = `translate(${cx}px, ${cy}px)`;
    }
    group.dataset.at = `${cx},${cy}`;
    if (group.dataset.shape !== signature) {
      group.dataset.shape = signature;
      const text = svg("text", { class: "label", "text-anchor": "middle" });
      const top = -((lines.length - 1) * 17.5) / 2;
      lines.forEach((line, i) => text.append(svg("tspan", { x: 0, y: (top + i * 17.5).toFixed(1), dy: "0.35em", text: line })));
      const title = svg("title", { text: lines.join("\n") });
      group.replaceChildren(title, svg("rect", { x: -w / 2, y: -hgt / 2, width: w, height: hgt, rx: 4 }), text);
    }
  }
  for (const [id, group] of groups) {
    if (!keep.has(id)) {
      group.remove();
      groups.delete(id);
    }
  }

  const keepEdges = new Set();
  const seen = new Map();
  for (const edge of layout.edges) {
    const base = `edge:${edge.source}->${edge.target}`;
    const count = (seen.get(base) ?? 0) + 1;
    seen.set(base, count);
    const id = count === 1 ? base : `${base}:${count}`;
    keepEdges.add(id);
    let group = edgeGroups.get(id);
    if (!group) {
      group = /** @type {SVGGElement} */ (
        svg("g", { id, class: "edge entering", "aria-hidden": "true" }, svg("path"), svg("polygon"), svg("text", { class: "edge-label", "text-anchor": "middle" }))
      );
      edgeGroups.set(id, group);
      edgeLayer.append(group);
      requestAnimationFrame(() => group.classList.remove("entering"));
    }
    group.dataset.source = edge.source;
    group.dataset.target = edge.target;
    const [path, arrow, label] = group.children;
    path.style.d = `path("${edge.d}")`;
    arrow.setAttribute("points", edge.arrow.map((p) => p.join(",")).join(" "));
    if (edge.label) {
      label.setAttribute("x", edge.label[0]);
      label.setAttribute("y", edge.label[1]);
      label.setAttribute("dy", "0.35em");
    }
  }
  for (const [id, group] of edgeGroups) {
    if (!keepEdges.has(id)) {
      group.remove();
      edgeGroups.delete(id);
    }
  }
  shownLayout = layout;
}

/** The words of a node's state, for its accessible name. */
function describe(node, focus) {
  // The name starts with the text drawn in the node (WCAG 2.5.3, label in name).
  const words = [labelLines(node, usesById.get(node.id) ?? 0).join(" ")];
  if (node.kind === "leaf") words.push("leaf tensor");
  else if (node.kind === "output") words.push("output tensor");
  else if (node.role) words.push(`${node.role} op`);
  else words.push("backward function");
  if (isFreed(node)) words.push("freed: run by an earlier backward");
  else if (node.executed) words.push(node.kind === "function" && !node.role ? "executed by backward" : "executed");
  else if (node.kind === "function") words.push("not executed yet");
  if (node.saved?.some((s) => s.stale)) words.push("stale: a saved tensor was modified in place");
  if (focus) words.push("current");
  return words.join(", ");
}

/** Run by an earlier backward call (its ledger gone, its buffers freed): muted. */
function isFreed(node) {
  return Boolean(node.executed && node.kind === "function" && !node.role && !node.ledger && !node.id.startsWith("acc:"));
}

/** Set the states of every node and the words of every edge. */
function paint(graph, selected) {
  const byId = new Map(graph.nodes.map((node) => [node.id, node]));
  for (const [id, group] of groups) {
    const node = byId.get(id);
    if (!node) continue;
    const focus = id === graph.focus;
    group.setAttribute("class", "node");
    group.classList.add(`kind-${node.kind}`, node.kind);
    if (node.role) group.classList.add(`role-${node.role}`);
    group.classList.toggle("executed", Boolean(node.executed));
    group.classList.toggle("freed", isFreed(node));
    group.classList.toggle("stale", Boolean(node.saved?.some((s) => s.stale)));
    group.classList.toggle("focus", focus);
    group.classList.toggle("selected", id === selected);
    group.classList.toggle("linked", linked.has(id));
    group.setAttribute("aria-pressed", String(id === selected));
    group.setAttribute("aria-label", describe(node, focus));
  }
  const focusNode = graph.focus ? byId.get(graph.focus) : null;
  for (const group of edgeGroups.values()) {
    const source = byId.get(group.dataset.source);
    const target = byId.get(group.dataset.target);
    const { text, backward } = edgeWords(source, target);
    const label = group.children[2];
    if (label.textContent !== text) label.textContent = text;
    group.classList.toggle("backward", backward);
    // The gradients the current node has just sent (or, an AccumulateGrad, received).
    const used = Boolean(focusNode?.ledger) && (target === focusNode || (focusNode.id.startsWith("acc:") && source === focusNode));
    group.classList.toggle("used", used);
    group.classList.toggle("freed", Boolean(target && isFreed(target)));
  }
}

/**
 * What an edge carries: forward, the shape of the tensor flowing from `source` to
 * `target`; once backward has run `target`, the norm of the gradient it sent back.
 */
function edgeWords(source, target) {
  // An output node writes its own shape beside the node that made it.
  if (!source || !target || target.kind === "output") return { text: "", backward: false };
  const ledger = target.ledger;
  if (ledger) {
    let grad = null;
    if (target.id.startsWith("acc:")) grad = ledger.grad_outputs?.[0] ?? null;
    else grad = (ledger.grad_inputs ?? []).find((g) => g && g.to === source.id) ?? null;
    if (grad) return { text: `‖g‖ ${num(grad.norm)}`, backward: true };
  }
  const flowing = source.shape ?? null;
  return { text: flowing ? `(${flowing.join(", ")})` : "", backward: false };
}

/** The autograd legend, or the static graph's own (roles instead of backward states). */
function showLegend(kind) {
  if (!legend) return;
  let own = panel.querySelector(".legend-static");
  if (kind === "static" && !own) {
    const item = (cls, text) => h("li", {}, h("span", { class: `swatch ${cls}` }), text);
    own = h(
      "ul",
      { class: "legend legend-static", "aria-label": "Legend of the static graph", "data-testid": "legend-static" },
      item("sw-leaf", "input (placeholder)"),
      item("sw-role-forward", "forward op"),
      item("sw-role-gradient", "gradient op (traced backward)"),
      item("sw-role-update", "update op (new parameters)"),
      item("sw-output", "output"),
      item("sw-role-run", "run in this call"),
      item("sw-focus", "current op"),
    );
    legend.after(own);
  }
  legend.hidden = kind === "static";
  if (own) own.hidden = kind !== "static";
}

// -- the view ------------------------------------------------------------------------

/** Apply a view transform; `glide` animates it (not while dragging or zooming by wheel). */
function setView(next, glide) {
  view = next;
  if (!viewport) return;
  viewport.classList.toggle("glide", Boolean(glide));
  viewport.style.transform = `translate(${next.x}px, ${next.y}px) scale(${next.zoom})`;
  drawOverviewFrame();
}

function zoomAround(factor, px, py, glide) {
  const zoom = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, view.zoom * factor));
  const k = zoom / view.zoom;
  setView({ zoom, x: px - (px - view.x) * k, y: py - (py - view.y) * k }, glide);
}

/** The whole graph in the panel, whatever the size of its labels (the Fit button). */
function fitAll() {
  if (!shownLayout || !box.clientWidth) return;
  const { width, height } = shownLayout;
  const zoom = Math.min(MAX_FIT_ZOOM, (box.clientWidth - 2 * MARGIN) / Math.max(width, 1), (box.clientHeight - 2 * MARGIN) / Math.max(height, 1));
  setView({ zoom, x: (box.clientWidth - width * zoom) / 2, y: (box.clientHeight - height * zoom) / 2 }, true);
}

/**
 * The default view: the whole graph when it fits at a readable zoom, else the readable
 * zoom around the current node (or the newest one), the rest in the overview.
 */
function home(glide) {
  if (!shownLayout || !box.clientWidth || !box.clientHeight) return;
  const { width, height } = shownLayout;
  const W = box.clientWidth;
  const H = box.clientHeight;
  const fit = Math.min((W - 2 * MARGIN) / Math.max(width, 1), (H - 2 * MARGIN) / Math.max(height, 1));
  if (fit >= READABLE_ZOOM) {
    const zoom = Math.min(fit, MAX_FIT_ZOOM);
    setView({ zoom, x: (W - width * zoom) / 2, y: (H - height * zoom) / 2 }, glide);
    box.classList.remove("is-large");
    return;
  }
  box.classList.add("is-large");
  const zoom = READABLE_ZOOM;
  const [cx, cy] = centre();
  // Keep the graph's edges from leaving needless empty space at the panel's sides.
  const clamp = (value, size, span) => (span * zoom <= size ? (size - span * zoom) / 2 : Math.min(MARGIN, Math.max(size - span * zoom - MARGIN, value)));
  setView({ zoom, x: clamp(W / 2 - cx * zoom, W, width), y: clamp(H / 2 - cy * zoom, H, height) }, glide);
}

/** The point the default view centres on: the current node, else the newest one. */
function centre() {
  const nodes = shownLayout.nodes;
  const focus = shownGraph?.focus;
  if (focus && nodes[focus]) return nodes[focus];
  let best = null;
  let bestNumber = -1;
  for (const id of Object.keys(nodes)) {
    const number = Number(id.replace(/\D/g, "") || -1);
    if (number > bestNumber) [best, bestNumber] = [id, number];
  }
  return best ? nodes[best] : [shownLayout.width / 2, shownLayout.height / 2];
}

/** Pan so that `group` is inside the panel, if it is not. */
function keepInView(group) {
  if (!group || !shownLayout) return;
  const at = shownLayout.nodes[group.id];
  if (!at) return;
  const [cx, cy, w, hgt] = at;
  const left = view.x + (cx - w / 2) * view.zoom;
  const right = view.x + (cx + w / 2) * view.zoom;
  const top = view.y + (cy - hgt / 2) * view.zoom;
  const bottom = view.y + (cy + hgt / 2) * view.zoom;
  if (left >= 0 && right <= box.clientWidth && top >= 0 && bottom <= box.clientHeight) return;
  setView({ zoom: view.zoom, x: box.clientWidth / 2 - cx * view.zoom, y: box.clientHeight / 2 - cy * view.zoom }, true);
}

/** A node that got the keyboard focus: in the panel's view, and the panel in the page's. */
function reveal(group) {
  keepInView(group);
  // NOTE: the page's scroll-padding-top keeps it clear of the sticky controls.
  requestAnimationFrame(() => group.scrollIntoView({ block: "nearest", inline: "nearest" }));
}

// -- the overview --------------------------------------------------------------------

/** A small drawing of the whole graph (shapes only) when it does not fit in sight. */
function drawOverview() {
  const stage = box.parentElement;
  if (!shownLayout || !stage) return;
  const { width, height } = shownLayout;
  const large = width * view.zoom > box.clientWidth + 1 || height * view.zoom > box.clientHeight + 1;
  if (!large || !width || !height) {
    overview?.root.remove();
    overview = null;
    return;
  }
  const scale = Math.min(160 / width, 120 / height);
  if (!overview) {
    const ovRoot = svg("svg", { class: "graph-overview", "aria-hidden": "true", "data-testid": "graph-overview" });
    const shapes = svg("g", { class: "shapes" });
    const frame = svg("rect", { class: "frame" });
    ovRoot.append(shapes, frame);
    stage.append(ovRoot);
    overview = { root: ovRoot, shapes, frame, key: null, scale };
    ovRoot.addEventListener("pointerdown", (event) => {
      // Centre the view on the point pressed.
      const area = ovRoot.getBoundingClientRect();
      const px = (event.clientX - area.left) / overview.scale;
      const py = (event.clientY - area.top) / overview.scale;
      userMoved = true;
      setView({ zoom: view.zoom, x: box.clientWidth / 2 - px * view.zoom, y: box.clientHeight / 2 - py * view.zoom }, true);
    });
  }
  overview.scale = scale;
  overview.root.setAttribute("width", String(Math.round(width * scale)));
  overview.root.setAttribute("height", String(Math.round(height * scale)));
  overview.root.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const marks = [];
  for (const [id, [cx, cy, w, hgt]] of Object.entries(shownLayout.nodes)) {
    const cls = groups.get(id)?.getAttribute("class")?.replace(/\bnode\b/, "mark") ?? "mark";
    marks.push(svg("rect", { class: cls, x: cx - w / 2, y: cy - hgt / 2, width: w, height: hgt, rx: 4 }));
  }
  overview.shapes.replaceChildren(...marks);
  drawOverviewFrame();
}

function drawOverviewFrame() {
  if (!overview) return;
  const x = -view.x / view.zoom;
  const y = -view.y / view.zoom;
  overview.frame.setAttribute("x", String(x));
  overview.frame.setAttribute("y", String(y));
  overview.frame.setAttribute("width", String(box.clientWidth / view.zoom));
  overview.frame.setAttribute("height", String(box.clientHeight / view.zoom));
}

// -- node details ----------------------------------------------------------------------

/**
 * Show the details of one node: what it is, what it saved, what backward gave it.
 * @param {Object|undefined|null} node a node of the Graph JSON
 */
function renderInfo(node) {
  info.hidden = !node;
  if (!node) return;
  field(info, "node-name").textContent = node.name;
  const rows = [
    ["kind", node.role ? `${node.kind} (${node.role})` : node.kind],
    ["shape", shape(node.shape)],
  ];
  if (node.tensors?.length) rows.push(["variables", node.tensors.join(", ")]);
  /** The lesson line whose forward op created the node (marked in the code panel). */
  if (node.line) rows.push(["created on", `line ${node.line}`]);
  if (node.kind === "function" && !node.role) rows.push(["executed", isFreed(node) ? "by an earlier backward (buffers freed)" : node.executed ? "yes: backward ran it" : "not yet"]);
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
  } else if (node.executed && !node.role) {
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
