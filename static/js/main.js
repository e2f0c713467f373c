/**
 * The explorer's controller: it owns the model (the session's State, its graph, what is
 * selected), turns user actions into REST calls, and hands the results to the views.
 * The views own the DOM; the URL holds lesson, config and cursor, and a learner's edited
 * program in its fragment (state.js).
 */

import * as api from "./api.js";
import { ApiError } from "./api.js";
import { Editing } from "./edit.js";
import { Explainer } from "./explain.js";
import { remember } from "./focus.js";
import * as url from "./state.js";
import * as code from "./views/code.js";
import * as config from "./views/config.js";
import * as controls from "./views/controls.js";
import * as detail from "./views/detail.js";
import * as graphView from "./views/graph.js";
import * as graphText from "./views/graph-text.js";
import * as losses from "./views/losses.js";
import * as optimizer from "./views/optimizer.js";
import * as page from "./views/page.js";
import * as scalars from "./views/scalars.js";
import * as variables from "./views/variables.js";

/** The panels whose closing hands the focus back to what opened them. */
const detailBox = /** @type {HTMLElement} */ (document.querySelector('[data-testid="detail"]'));
const nodeCard = /** @type {HTMLElement} */ (document.querySelector('[data-testid="node-info"]'));

/** Steps of kind `event` per request of a run to the end, at first; then tuned. */
const RUN_CHUNK = 2000;
/** Wall time a run-to-end request should take, so progress and Cancel stay responsive. */
const RUN_SLICE_MS = 250;
/** Actions that may wait behind the one in progress (holding a key down queues no more). */
const MAX_QUEUED = 2;

class Explorer {
  constructor() {
    /** @type {import("./views/page.js").LessonMeta} */
    this.lesson = page.meta();
    /** The API's State of the session on screen, or null before one exists. */
    this.state = null;
    /** The variables one move earlier, to mark what the last move changed. */
    this.before = null;
    /** The module-level numbers one move earlier, likewise. */
    this.beforeScalars = null;
    /** The name of the variable whose details are open. */
    this.selectedVar = null;
    /** The id of the graph node whose details are open. */
    this.selectedNode = null;
    /** The Graph JSON on screen, to redraw node details without a request. */
    this.graph = null;
    /** "en" or "zh": the language of the notes, remembered across visits. */
    this.lang = localStorage.getItem("agx.lang") === "zh" ? "zh" : "en";
    /** The run to the end in progress: set `cancelled` to stop it. */
    this.run = null;
    this.queue = Promise.resolve();
    this.queued = 0;
    this.detailAbort = null;
    /** The program of the session on screen: a learner's edit, or null for the lesson's. */
    this.source = null;
    /** The URL fragment that carries `source` ("" for the lesson's program). */
    this.fragment = "";
    /** Ledgers, linked views, gradient checks and the in-place error's trail. */
    this.explain = new Explainer(this);
    /** Edit mode, edited programs and the links that carry them. */
    this.edit = new Editing(this);
  }

  start() {
    controls.bind({ onAction: (name) => this.enqueue(() => this.act(name)), onCancel: () => this.cancel() });
    this.explain.bind();
    this.edit.bind();
    config.bind({
      onApply: (values) => this.enqueue(() => this.open(url.overrides(values, this.lesson.defaults), 0, true, this.source)),
      onDefaults: () => config.fill(this.lesson.defaults),
    });
    losses.bind();
    graphText.bind();
    page.bindLayout();
    addEventListener("popstate", () => this.enqueue(() => this.restore()));
    addEventListener("pagehide", () => {
      if (this.state) api.deleteSession(this.state.id);
    });
    // Back to this page from the browser's cache: its session was deleted on the way out.
    addEventListener("pageshow", (event) => {
      if (!event.persisted || !this.state) return;
      const { config: resolved, cursor } = this.state;
      this.state = null;
      this.enqueue(() => this.open(url.overrides(resolved, this.lesson.defaults), cursor, null, this.source));
    });
    api.devices().then(config.setDevices, () => null);
    this.enqueue(() => this.arrive());
  }

  /** Show the view of the URL the page was opened with (a reload, a shared link). */
  async arrive() {
    const view = url.current(this.lesson.fields, this.lesson.defaults);
    config.fill({ ...this.lesson.defaults, ...view.config });
    const program = await this.edit.fromLink();
    if (program === null) return this.welcome(view.config, false, view.cursor);
    // A program runs by itself only if this tab ran it, and not with a much heavier config.
    if (!this.edit.ran(program) || heavierThan(view.config, this.lesson.defaults).length) {
      return this.edit.offer(program, view.cursor);
    }
    await this.open(view.config, view.cursor, false, program);
  }

  /**
   * Start a session of the lesson's program, unless `overrides` asks for much more than
   * its defaults: a shared link runs a heavier config only once the reader presses Apply.
   * @param {Object<string, *>} overrides
   * @param {boolean} push a new history entry, or the current one replaced
   * @param {number} [cursor]
   * @returns {Promise<boolean>} whether a session started
   */
  async welcome(overrides, push, cursor = 0) {
    const heavier = heavierThan(overrides, this.lesson.defaults);
    if (!heavier.length) return this.open(overrides, cursor, push);
    config.open();
    controls.idle(
      `This link asks for more than the lesson's defaults (${heavier.join(", ")}): ` +
        "check the configuration and press Apply to run it.",
    );
    return false;
  }

  /** Run `action` after the ones before it; drop it if too many wait. */
  enqueue(action) {
    if (this.queued > MAX_QUEUED || this.run) return;
    this.queued += 1;
    page.setBusy(true);
    this.queue = this.queue
      .then(action)
      .catch((error) => this.fail(error))
      .finally(() => {
        this.queued -= 1;
        if (this.queued === 0) page.setBusy(false);
      });
  }

  /**
   * Start a session with `overrides` and move it to `cursor`.
   * @param {Object<string, *>} overrides settings that differ from the defaults
   * @param {number} cursor
   * @param {boolean|null} push a new history entry, the current one replaced, or history
   *   left alone (null)
   * @param {string|null} [source] a learner's program to run in place of the lesson's
   * @returns {Promise<boolean>} whether it started (false: the config was refused)
   * @throws {ApiError} when the server refuses the program (403, 422 with its line)
   */
  async open(overrides, cursor, push, source = null) {
    // The form keeps the refused values to fix; the summary, the config that still runs.
    const refuse = (detail, fieldErrors) => {
      config.fill({ ...this.lesson.defaults, ...overrides });
      config.summarize(this.state?.config ?? null);
      config.showError(detail, this.lesson.fields, fieldErrors ?? []);
      if (!this.state) controls.idle("fix the configuration to start");
      return false;
    };
    const check = await api.checkConfig(this.lesson.id, overrides);
    if (!check.valid) return refuse(check.detail, check.errors);
    let state;
    try {
      state = await api.createSession(this.lesson.id, overrides, source);
    } catch (error) {
      // A program's 422 (its syntax, its size) is the editor's to show.
      if (error instanceof ApiError && error.status === 422 && source === null) return refuse(error.detail, error.errors);
      throw error;
    }
    config.clearErrors();
    if (this.state) api.deleteSession(this.state.id);
    await this.edit.list(source);
    if (cursor > 0) state = await api.seek(state.id, cursor);
    await this.show(state, { push, mark: false });
    return true;
  }

  /** Go to the view the URL describes (back and forward buttons). */
  async restore() {
    const view = url.current(this.lesson.fields, this.lesson.defaults);
    const program = await this.edit.fromLink();
    if (program !== null && !this.edit.ran(program)) return this.edit.offer(program, view.cursor);
    const same = this.state && program === this.source;
    if (same && url.sameConfig(view.config, this.state.config, this.lesson.defaults)) {
      if (view.cursor !== this.state.cursor) await this.show(await api.seek(this.state.id, view.cursor), { push: null });
    } else {
      config.fill({ ...this.lesson.defaults, ...view.config });
      await this.open(view.config, view.cursor, null, program);
    }
  }

  /**
   * Carry out a stepping action.
   * NOTE: a step replaces the current history entry rather than pushing one: the URL
   * still holds the cursor (a reload or a shared link shows this step), but after a run
   * one press of Back leaves the lesson instead of walking back through every step.
   * Only a new config (Apply, or Reset with an edited form) pushes an entry.
   * @param {string} name step, line, phase, iteration, end, back or reset
   */
  async act(name) {
    if (!this.state) return;
    const id = this.state.id;
    if (name === "end") return this.runToEnd();
    if (name === "reset") {
      const wanted = url.overrides(config.read(), this.lesson.defaults);
      if (!url.sameConfig(wanted, this.state.config, this.lesson.defaults)) return this.open(wanted, 0, true, this.source);
      return this.show(await api.seek(id, 0), { push: false, mark: false });
    }
    if (name === "back") {
      if (this.state.cursor === 0) return;
      return this.show(await api.seek(id, this.state.cursor - 1), { push: false });
    }
    const by = name === "step" ? "event" : name;
    return this.show(await this.finish(await api.step(id, by, 1), by), { push: false });
  }

  /**
   * Go on with a step the server stopped at its time limit (State.interrupted), in
   * further steps of what is left, until it is done or the user cancels.
   * @param {Object} state the answer of the first step
   * @param {string} by the step's kind
   */
  async finish(state, by) {
    if (state.interrupted?.reason !== "time") return state;
    const run = { cancelled: false };
    this.run = run;
    controls.setRunning(true);
    try {
      while (state.interrupted?.reason === "time" && !run.cancelled) {
        state = await api.step(state.id, by, state.interrupted.remaining ?? 1);
      }
    } finally {
      this.run = null;
      controls.setRunning(false);
    }
    return state;
  }

  /** Step to the end in chunks, showing progress, until done or cancelled. */
  async runToEnd() {
    const run = { cancelled: false };
    this.run = run;
    const total = this.state.config.iterations;
    controls.setRunning(true);
    controls.progress(this.state.losses.length, total);
    let count = RUN_CHUNK;
    let state = this.state;
    try {
      while (!state.done && !run.cancelled) {
        const started = performance.now();
        state = await api.step(state.id, "event", count);
        const took = performance.now() - started;
        count = Math.max(50, Math.min(200000, Math.round((count * RUN_SLICE_MS) / Math.max(took, 1))));
        /** Iterations finished: one loss per finished iteration. */
        controls.progress(state.done ? total : state.losses.length, total);
        losses.render(state.losses, total);
      }
    } finally {
      this.run = null;
      controls.setRunning(false);
    }
    await this.show(state, { push: false });
    controls.focusStep();
  }

  /** Stop a run: no further chunk, and the one in flight stops at its next event. */
  cancel() {
    if (!this.run) return;
    this.run.cancelled = true;
    if (this.state) api.cancel(this.state.id).catch(() => null);
  }

  /**
   * Fetch the graph of `state` and paint every panel.
   * @param {Object} state the API's State
   * @param {{push: boolean|null, mark?: boolean}} options push: new history entry, false:
   *   replace the current one, null: leave history alone; mark: show what changed
   */
  async show(state, { push, mark = true }) {
    // One round trip: a step or seek of one event brings the graph and its layout along.
    const view = state.view ?? (await api.graphView(state.id));
    delete state.view;
    const graph = view.graph;
    const painting = performance.now();
    // The repaint replaces rows, graph nodes and cells: the focused one gets the focus back.
    const restoreFocus = remember();
    const started = this.state?.id !== state.id;
    this.before = mark && this.state ? this.state.variables : null;
    this.beforeScalars = mark && this.state ? this.state.scalars ?? {} : null;
    this.state = state;
    this.graph = graph;
    const iterations = state.config.iterations;
    if (this.selectedNode && !graph.nodes.some((n) => n.id === this.selectedNode)) this.selectedNode = null;
    graphView.render(graph, view.layout, this.selectedNode);
    graphText.render(graph);
    variables.render(state.variables, this.before, this.selectedVar, state.frames ?? []);
    scalars.render(state.scalars, this.beforeScalars, this.lang);
    code.render(state, { lang: this.lang, iterations });
    this.explain.paint();
    optimizer.render(state.optimizer);
    losses.render(state.losses, iterations);
    // A step leaves the form alone: it may hold values being edited or refused ones.
    if (started) config.render(state.config);
    else config.summarize(state.config);
    controls.render(state, this.before);
    this.edit.paint(state);
    // NOTE: bench/bench_browser.py reads this measure to split a step into requests and DOM work.
    performance.measure("agx:paint", { start: painting });
    restoreFocus();
    if (push !== null) url.record({ config: state.config, cursor: state.cursor }, { ...this.lesson, push, fragment: this.fragment });
    this.refreshDetail();
  }

  /** Open (or close, with null) the details of a variable. */
  selectVariable(name) {
    const previous = this.selectedVar;
    const closing = !name && detailBox.contains(document.activeElement);
    this.selectedVar = name;
    if (!name) detail.close();
    if (this.state) variables.render(this.state.variables, this.before, this.selectedVar, this.state.frames ?? []);
    this.explain.renderLinks();
    this.refreshDetail();
    // Closing the details returns the focus to the row that opened them.
    if (closing || (!name && document.activeElement === document.body)) {
      const base = previous?.replace(/\.grad$/, "") ?? "";
      const row = document.querySelector(`[data-testid="variables"] tr[data-name="${CSS.escape(base)}"] button`);
      (row ?? document.querySelector(".vars-panel .table-wrap"))?.focus();
    }
  }

  /** Open (or close, with null) the details of a graph node; its ledger shows in the card. */
  selectNode(id) {
    const previous = this.selectedNode;
    const closing = id === null && nodeCard.contains(document.activeElement);
    this.selectedNode = id;
    if (!this.graph) return;
    graphView.render(this.graph, null, id);
    this.explain.selected(id);
    // Closing the node's details returns the focus to the node (or to the graph).
    if (closing || (id === null && document.activeElement === document.body)) {
      const node = previous ? document.querySelector(`[data-testid="graph"] g.node[id="${CSS.escape(previous)}"]`) : null;
      const target = node ?? document.querySelector('[data-testid="graph"]');
      target?.focus();
    }
  }

  /** Fetch the detail of the selected variable at the current cursor. */
  async refreshDetail() {
    this.detailAbort?.abort();
    const name = this.selectedVar;
    if (!name || !this.state) return;
    const base = name.endsWith(".grad") ? name.slice(0, -5) : name;
    if (!(base in this.state.variables)) {
      detail.pending(name, "Not in scope at this point of the program.");
      return;
    }
    if (base !== name && !this.state.variables[base].grad) {
      detail.pending(name, `None at this point of the program: ${base}.grad is empty.`);
      return;
    }
    const abort = new AbortController();
    this.detailAbort = abort;
    try {
      const check = this.explain.checkable(name);
      const tensor = await api.tensor(this.state.id, name, abort.signal);
      const restoreFocus = remember(detailBox);
      detail.render(name, tensor, { check });
      restoreFocus();
    } catch (error) {
      if (error.name === "AbortError") return;
      detail.pending(name, error instanceof ApiError ? error.detail : String(error));
    }
  }

  setLang(lang) {
    this.lang = lang;
    localStorage.setItem("agx.lang", lang);
    if (!this.state) return this.edit.relabel();
    code.render(this.state, { lang, iterations: this.state.config.iterations });
    scalars.render(this.state.scalars, this.beforeScalars, lang);
    this.explain.relabel();
    this.edit.relabel();
  }

  /** Report a failed action; rebuild the session if the server no longer has it. */
  async fail(error) {
    if (error instanceof ApiError && error.status === 404 && this.state) {
      page.notify("The session expired on the server; it was started again at the same point.");
      const { config: resolved, cursor } = this.state;
      this.state = null;
      await this.open(url.overrides(resolved, this.lesson.defaults), cursor, null, this.source).catch((e) => page.notify(String(e.message ?? e)));
      return;
    }
    page.notify(error instanceof ApiError ? error.detail : `Something went wrong: ${error?.message ?? error}`);
  }
}

new Explorer().start();

/**
 * Whether `config` runs heavier than the lesson's defaults (over HEAVY_FACTOR times their
 * multiply-adds or tensor memory, as the server estimates them up to a constant): the
 * sizes that exceed the defaults, as "name value" words; none when it is not heavier.
 */
function heavierThan(config, defaults) {
  const HEAVY_FACTOR = 10; // times the defaults' work or memory a link runs by itself
  const sizes = { ...defaults, ...config };
  const work = (c) => c.iterations * c.N * c.H * (c.D_in + c.D_out);
  const memory = (c) => c.N * c.D_in + c.D_in * c.H + c.H * c.D_out + c.N * (c.H + c.D_out);
  const heavy = (measure) => measure(sizes) > HEAVY_FACTOR * measure(defaults);
  if (!heavy(work) && !heavy(memory)) return [];
  return ["N", "D_in", "H", "D_out", "iterations"]
    .filter((name) => sizes[name] > defaults[name])
    .map((name) => `${name} ${sizes[name]}`);
}
