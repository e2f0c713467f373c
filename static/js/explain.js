/**
 * The controller's explaining half: the ledger card, linked views (graph node ↔ code line
 * ↔ variable), checking a gradient, and the trail of an in-place error. It reads the
 * explorer's model (state, graph, selection, language) and never changes the program's
 * position except when asked to go where a tensor changed.
 */

import * as api from "./api.js";
import { ApiError } from "./api.js";
import * as code from "./views/code.js";
import * as detail from "./views/detail.js";
import * as errors from "./views/error.js";
import * as graphView from "./views/graph.js";
import * as ledger from "./views/ledger.js";
import * as variables from "./views/variables.js";

/**
 * @typedef {Object} Model what the explainer reads of the explorer
 * @property {Object|null} state the API's State on screen
 * @property {Object|null} graph the Graph JSON on screen
 * @property {string|null} selectedNode the id of the graph node whose details are open
 * @property {string|null} selectedVar the variable whose details are open
 * @property {string} lang "en" or "zh"
 * @property {(action: () => Promise<*>) => void} enqueue run an action after the ones before it
 * @property {(state: Object, options: Object) => Promise<void>} show paint a state
 */

export class Explainer {
  /** @param {Model} model */
  constructor(model) {
    this.model = model;
    /** The ledger on the card (null: none), for looking up its elements. */
    this.shownLedger = null;
    /** Whether the ledger card shows the selected node rather than the current event's. */
    this.preferSelected = false;
    /** What the pointer (or keyboard focus) is on, for the linked views. */
    this.hover = { node: null, variable: null, line: null };
  }

  /** Wire hovering, the links to code lines, the gradient check and "Show where it changed". */
  bind() {
    const m = this.model;
    code.bind({ onLang: (lang) => m.setLang(lang), onHover: (line) => this.hovered("line", line) });
    graphView.bind({ onSelect: (id) => m.selectNode(id), onHover: (id) => this.hovered("node", id) });
    variables.bind({ onSelect: (name) => m.selectVariable(name), onHover: (name) => this.hovered("variable", name) });
    detail.bind({
      onOpen: (name) => m.selectVariable(name),
      onClose: () => m.selectVariable(null),
      onCheck: (tensor, index) => m.enqueue(() => this.check(tensor, index)),
    });
    const showLine = (line) => code.mark("linked", [line], { reveal: true });
    ledger.bind({ onLine: showLine, onLookup: (side, k, index) => this.lookup(side, k, index) });
    errors.bind({ onLine: showLine, onWhere: (stale) => m.enqueue(() => this.whereChanged(stale)) });
  }

  /**
   * Paint the explanations of the state on screen: a step shows the new current event's
   * ledger, not a node selected earlier.
   */
  paint() {
    this.preferSelected = false;
    const failing = this.model.state.error?.line ?? null;
    code.mark("failed", failing ? [failing] : [], { reveal: this.model.state.done });
    this.renderError();
    this.renderLedger();
    this.renderLinks();
  }

  /** Repaint what depends on the language of the notes. */
  relabel() {
    this.renderError();
    this.renderLedger();
  }

  /** A node was selected (or unselected): its ledger shows in the card. */
  selected(id) {
    this.preferSelected = id !== null;
    this.renderLedger();
    this.renderLinks({ reveal: true });
  }

  /**
   * Note what the pointer or the keyboard focus is on, and relink the views.
   * @param {"node"|"variable"|"line"} what
   * @param {string|number|null} value a node id, a variable name or a line number
   */
  hovered(what, value) {
    this.hover[what] = value;
    this.renderLinks({ reveal: what === "node" });
  }

  /** The node of the graph on screen with this id. */
  node(id) {
    return id ? this.model.graph?.nodes.find((n) => n.id === id) ?? null : null;
  }

  /**
   * Linked views, as CNN Explainer links overview and detail: a graph node hovered or
   * selected marks the line that created it and the variables it holds; a variable (or a
   * code line) hovered or selected marks its graph nodes.
   * @param {{reveal?: boolean}} [options] reveal: scroll the code to the node's line
   */
  renderLinks({ reveal = false } = {}) {
    const { graph, state, selectedNode, selectedVar } = this.model;
    if (!graph || !state) return;
    const node = this.node(this.hover.node) ?? this.node(selectedNode);
    code.mark("linked", node?.line ? [node.line] : [], { reveal: reveal && Boolean(node?.line) });
    variables.link(new Set(node?.tensors ?? []));
    const name = this.hover.variable ?? selectedVar?.replace(/\.grad$/, "") ?? null;
    const line = this.hover.line;
    const ids = graph.nodes
      .filter((n) => (name !== null && n.tensors?.includes(name)) || (name === null && line !== null && n.line === line))
      .map((n) => n.id);
    graphView.link(ids);
  }

  /** The ledger card: the selected node's after a click on it, else the current event's. */
  renderLedger() {
    const { graph, state, selectedNode, lang } = this.model;
    const event = state.event ?? {};
    const selected = this.node(selectedNode);
    let shown = null;
    let from = "event";
    if (selected?.ledger && (this.preferSelected || event.kind !== "node" || !event.ledger)) {
      shown = selected.ledger;
      from = "selected";
    } else if (event.kind === "node" && event.ledger) shown = event.ledger;
    const nodes = new Map(graph.nodes.map((n) => [n.id, n]));
    this.shownLedger = shown;
    ledger.render(shown, { from, nodes, lang, lineText: code.lineText });
    const range = shown?.source_lines;
    code.mark("source", range ? Array.from({ length: range[1] - range[0] + 1 }, (_, i) => range[0] + i) : []);
  }

  /** The error panel, with the failing line and the stale saved tensor when there is one. */
  renderError() {
    const { graph, state, lang } = this.model;
    const failing = state.error?.line ?? null;
    const node = graph?.nodes.find((n) => n.saved?.some((s) => s.stale));
    const saved = node?.saved.find((s) => s.stale);
    const stale = saved
      ? { node: node.name, nodeId: node.id, saved: saved.name, of: saved.of ?? null, versionSaved: saved.version_saved, versionNow: saved.version_now, changedAt: saved.changed_at ?? null }
      : null;
    errors.render(state.error, lang, { line: failing, lineText: failing ? code.lineText(failing) : "", stale });
  }

  /**
   * Look up one element of a gradient of the ledger on show (a replay to its node).
   * @returns {Promise<number|null|undefined>} its value (undefined: refused)
   */
  async lookup(side, k, index) {
    const { state } = this.model;
    const node = this.shownLedger?.node_id;
    if (!state || !node) return undefined;
    try {
      return (await api.gradElement(state.id, node, side, k, index)).value;
    } catch (error) {
      if (!(error instanceof ApiError) || error.status === 0) throw error;
      return undefined;
    }
  }

  /**
   * Go to the operation that changed a stale saved tensor: the engine records the cursor
   * of the in-place op that bumped its version (`changed_at`).
   * @param {import("./views/error.js").Stale} stale
   */
  async whereChanged(stale) {
    const { state } = this.model;
    if (!state || stale.changedAt === null) return;
    await this.model.show(await api.seek(state.id, stale.changedAt), { push: false });
  }

  /**
   * Check one element of a gradient numerically and show the result in the detail panel.
   * @param {string} tensor the parameter
   * @param {number[]} index the element
   */
  async check(tensor, index) {
    const m = this.model;
    if (!m.state) return;
    const where = () => `${m.state?.id}:${m.state?.cursor}:${m.selectedVar}`;
    const asked = where();
    detail.checking(tensor, index);
    try {
      const result = await api.gradcheck(m.state.id, tensor, index);
      if (where() === asked) detail.showCheck(result);
    } catch (error) {
      if (!(error instanceof ApiError) || error.status === 0) throw error;
      if (where() === asked) detail.showCheck(null, error.detail);
    }
  }

  /**
   * The parameter whose gradient the detail `name` shows, if it can be checked: `w1` for
   * `w1.grad`, and in the lessons that compute gradients by hand, `w1` for `grad_w1`.
   * The static graph's gradients live inside the captured graph: none there.
   * @param {string} name
   * @returns {string|null}
   */
  checkable(name) {
    const { graph, state } = this.model;
    const vars = state.variables;
    if (graph?.kind === "static") return null;
    if (name.endsWith(".grad")) {
      const base = vars[name.slice(0, -5)];
      return base?.is_leaf && base.requires_grad ? name.slice(0, -5) : null;
    }
    const param = name.startsWith("grad_") ? vars[name.slice(5)] : null;
    const same = param && vars[name] && param.shape.join() === vars[name].shape.join();
    return same && !param.requires_grad ? name.slice(5) : null;
  }
}
