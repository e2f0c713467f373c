/**
 * The graph as text: every node and edge of the Graph JSON in the words of the legend,
 * for screen readers and for anyone who would rather read than look. It is built from
 * the JSON alone (never from the SVG), so it says the same whatever the drawing does.
 */

import { field, h } from "../dom.js";
import { num, shape } from "../format.js";

const panel = /** @type {HTMLElement} */ (document.querySelector(".graph-panel"));
const box = /** @type {HTMLElement} */ (panel.querySelector('[data-testid="graph-text"]'));
const button = /** @type {HTMLButtonElement} */ (panel.querySelector('button[data-action="graph-text"]'));
const view = /** @type {HTMLElement} */ (panel.querySelector('[data-testid="graph"]'));

/** The Graph JSON last rendered, to fill the view when it opens. */
let shown = null;

/** Wire the "As text" toggle; the choice is remembered across visits. */
export function bind() {
  button.addEventListener("click", () => open(button.getAttribute("aria-pressed") !== "true", { focus: true }));
  box.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      open(false);
      button.focus();
    }
  });
  if (localStorage.getItem("agx.graph-text") === "on") open(true);
}

/**
 * Show the text view instead of the drawing, or the drawing again.
 * @param {boolean} on
 * @param {{focus?: boolean}} [options] focus: move the keyboard focus to the text
 */
function open(on, { focus = false } = {}) {
  button.setAttribute("aria-pressed", String(on));
  box.hidden = !on;
  panel.classList.toggle("shows-text", on);
  // The drawing stays laid out under the text (pan and zoom keep their size), out of reach.
  view.inert = on;
  localStorage.setItem("agx.graph-text", on ? "on" : "off");
  if (on && shown) render(shown);
  if (on && focus) box.focus();
}

/** The name a learner reads for a node: the legend's words, not the engine's ids. */
export function nodeName(node) {
  const name = (node.name ?? node.id).replace("torch::autograd::", "");
  if (node.kind === "function" && name === "AccumulateGrad" && node.tensors?.length) return `AccumulateGrad into ${node.tensors.join(", ")}.grad`;
  return name;
}

/**
 * What a node is and what state it is in, as words (never colour alone).
 * @param {Object} node a Graph JSON node
 * @param {Object} graph the Graph JSON
 * @returns {string[]}
 */
export function nodeStates(node, graph) {
  const states = [];
  if (node.kind === "leaf") states.push("leaf tensor");
  else if (node.kind === "output") states.push("output");
  else if (node.kind === "saved") states.push("saved tensor");
  else if (graph.kind === "static") states.push("operation");
  else states.push("backward function");
  if (node.kind === "function" && graph.kind !== "static") {
    const freed = node.executed && !node.ledger && !node.id.startsWith("acc:");
    states.push(freed ? "run by an earlier backward (freed)" : node.executed ? "executed by backward" : "not executed yet");
  }
  if (node.id === graph.focus) states.push("current event");
  if (node.saved?.some((s) => s.stale)) states.push("saved tensor modified in place");
  return states;
}

/**
 * Fill the text view with the nodes and edges of `graph`, when it is open.
 * @param {Object} graph the API's Graph JSON
 */
export function render(graph) {
  shown = graph;
  if (box.hidden) return;
  const body = field(box, "graph-text");
  if (!graph.nodes.length) {
    body.replaceChildren(h("p", { class: "muted", text: "No graph yet: it grows as operations on tensors that require gradients run." }));
    return;
  }
  const byId = new Map(graph.nodes.map((n) => [n.id, n]));
  const inputs = new Map();
  const users = new Map();
  for (const edge of graph.edges ?? []) {
    if (!byId.has(edge.source) || !byId.has(edge.target)) continue;
    inputs.set(edge.target, [...(inputs.get(edge.target) ?? []), edge.source]);
    users.set(edge.source, [...(users.get(edge.source) ?? []), edge.target]);
  }
  const names = (ids = []) => ids.map((id) => nodeName(byId.get(id))).join(", ");
  const backward = graph.kind !== "static";
  const executed = graph.nodes.filter((n) => n.kind === "function" && n.executed).length;
  const functions = graph.nodes.filter((n) => n.kind === "function").length;
  const focus = byId.get(graph.focus);
  const summary = [
    `${graph.nodes.length} nodes, ${(graph.edges ?? []).length} edges`,
    backward && functions ? `${executed} of ${functions} backward functions executed` : null,
    focus ? `current event: ${nodeName(focus)}` : null,
  ].filter(Boolean);
  const items = graph.nodes.map((node) => {
    const facts = [];
    if (node.shape !== null && node.shape !== undefined) facts.push(`shape ${shape(node.shape)}`);
    if (node.label) facts.push(node.label);
    if (node.line) facts.push(`line ${node.line}`);
    if (node.kind !== "leaf" && node.kind !== "output" && node.tensors?.length) facts.push(`tensors ${node.tensors.join(", ")}`);
    const from = inputs.get(node.id);
    const to = users.get(node.id);
    // Edges point the way the forward pass went (an input to the op that used it);
    // gradients flow against them, from the loss back to the leaves.
    const flow = backward
      ? [to?.length ? `gets its gradient from ${names(to)}` : null, from?.length ? `sends gradients to ${names(from)}` : null]
      : [from?.length ? `inputs from ${names(from)}` : null, to?.length ? `feeds ${names(to)}` : null];
    const grads = (node.grad_inputs ?? []).filter(Boolean).map((g) => `${shape(g.shape)} norm ${num(g.norm)}`);
    return h(
      "li",
      { data: { node: node.id }, class: node.id === graph.focus ? "is-focus" : null, "aria-current": node.id === graph.focus ? "true" : null },
      h("span", { class: "gt-name", text: nodeName(node) }),
      h("span", { class: "gt-states", text: ` (${nodeStates(node, graph).join(", ")})` }),
      facts.length ? h("span", { class: "gt-facts", text: `: ${facts.join("; ")}` }) : null,
      flow.some(Boolean) ? h("span", { class: "gt-flow", text: `. ${sentence(flow.filter(Boolean).join("; "))}` }) : null,
      grads.length ? h("span", { class: "gt-grads", text: `. Sent gradients ${grads.join(", ")}` }) : null,
      ".",
    );
  });
  body.replaceChildren(h("p", { class: "gt-summary", text: `${summary.join("; ")}.` }), h("ol", { class: "gt-nodes" }, ...items));
}

/** `text` with a capital first letter, to start a sentence. */
function sentence(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}
