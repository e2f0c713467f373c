/**
 * The controller's editing half: edit mode (views/editor.js), running a learner's version
 * of the lesson, going back to the lesson, and links that carry a program.
 *
 * NOTE: a link's program is anybody's code, so opening a link never runs it: the editor
 * shows it and the reader presses Run my version. A program this tab has run itself comes
 * back without asking (a reload, Back and Forward): the tab keeps the programs it ran in
 * its sessionStorage, which no other site and no link can write.
 */

import { ApiError } from "./api.js";
import * as python from "./source.js";
import * as url from "./state.js";
import * as code from "./views/code.js";
import * as controls from "./views/controls.js";
import * as editor from "./views/editor.js";
import * as output from "./views/output.js";
import * as page from "./views/page.js";
import { codemirror } from "./vendor.js";

/** sessionStorage key of the programs this tab ran, and how many it keeps. */
const RAN = "agx.ran";
const KEEP = 8;

/** Answers to a run that are about the code or this server, shown next to the editor. */
const REFUSALS = new Set([403, 409, 413, 422, 429]);

/**
 * @typedef {Object} Model what the editing half reads and sets of the explorer
 * @property {Object|null} state the API's State on screen
 * @property {string|null} source the program of the session on screen (null: the lesson's)
 * @property {string} fragment the URL fragment that carries it ("" for the lesson's)
 * @property {string} lang "en" or "zh"
 * @property {import("./views/page.js").LessonMeta} lesson
 * @property {(action: () => Promise<*>) => void} enqueue run an action after the ones before it
 * @property {(overrides: Object, cursor: number, push: boolean|null, source?: string|null) => Promise<boolean>} open
 * @property {(overrides: Object, push: boolean) => Promise<boolean>} welcome
 */

export class Editing {
  /** @param {Model} model */
  constructor(model) {
    this.model = model;
    /** The program the code panel lists (null: the lesson's own). */
    this.listed = null;
    /** The cursor of a link whose program waits for Run my version, else null. */
    this.offered = null;
  }

  bind() {
    const m = this.model;
    editor.bind({
      onEdit: () => m.enqueue(() => this.edit()),
      onRun: () => m.enqueue(() => this.run()),
      onCancel: () => m.enqueue(() => this.cancel()),
      onBack: () => m.enqueue(() => this.back()),
    });
    editor.relabel(m.lang);
  }

  /** Edit mode, with the program on screen. */
  async edit() {
    const m = this.model;
    this.offered = null;
    await editor.open(m.source ?? `${code.lessonLines().join("\n")}\n`);
  }

  /**
   * Offer a link's program: edit mode with the code, which runs only when the reader
   * presses Run my version.
   * @param {string} program
   * @param {number} cursor where the link was, to go there once it runs
   */
  async offer(program, cursor) {
    this.offered = cursor;
    await editor.open(program, { link: true });
    if (!this.model.state) controls.idle("This link carries code: read it, then press Run my version to run it.");
  }

  /** Run the editor's program with the config on screen, as a new session. */
  async run() {
    const m = this.model;
    const program = editor.text();
    editor.clearError();
    const overrides = m.state
      ? url.overrides(m.state.config, m.lesson.defaults)
      : url.current(m.lesson.fields, m.lesson.defaults).config;
    let started;
    try {
      started = await m.open(overrides, this.offered ?? 0, true, program);
    } catch (error) {
      if (!(error instanceof ApiError) || !REFUSALS.has(error.status)) throw error;
      editor.showError(error.detail, error);
      return;
    }
    if (!started) {
      editor.showError("The configuration was refused: correct it under Configuration, then press Run my version again.");
      return;
    }
    this.offered = null;
    editor.close();
    controls.focusStep({ always: true });
  }

  /** Leave edit mode without running; a link's program not run gives way to the lesson. */
  async cancel() {
    const m = this.model;
    editor.close();
    this.offered = null;
    if (!m.state) {
      await m.welcome(url.current(m.lesson.fields, m.lesson.defaults).config, true);
    }
    editor.focusEdit();
  }

  /** A new session of the lesson's own program, with the same config. */
  async back() {
    const m = this.model;
    const overrides = url.overrides(m.state?.config ?? {}, m.lesson.defaults);
    if (!(await m.open(overrides, 0, true, null))) return;
    editor.close();
    editor.focusEdit();
  }

  /**
   * The program a new session runs: list it in the code panel (its changed lines marked,
   * the lesson's notes on the lines it kept), and carry it in the URL.
   * @param {string|null} program null: the lesson's own
   */
  async list(program) {
    const m = this.model;
    m.source = program;
    m.fragment = program === null ? "" : await url.packSource(program);
    if (program !== null) remember(program);
    if (program === this.listed) return;
    this.listed = program;
    if (program === null) {
      code.setProgram(null);
      return;
    }
    const cm = await codemirror();
    const lines = python.lines(program);
    code.setProgram({
      colours: python.colour(cm, program),
      kept: python.unchanged(code.lessonLines(), lines),
      phases: python.phases(lines),
    });
  }

  /**
   * The program the URL's fragment carries, or null (also when it cannot be read: the
   * reader is told why).
   * @returns {Promise<string|null>}
   */
  async fromLink() {
    try {
      return await url.unpackSource(location.hash);
    } catch (error) {
      page.notify(error.message);
      return null;
    }
  }

  /** Whether this tab ran `program` itself. */
  ran(program) {
    return ranHere().includes(program);
  }

  /**
   * Paint what depends on the program of `state`: the output panel, "Back to the lesson".
   * @param {Object} state
   */
  paint(state) {
    output.render(state.output ?? null, Boolean(state.edited), this.model.lang);
    editor.setEdited(this.model.source !== null);
  }

  /** Say edit mode's sentences in the language of the notes. */
  relabel() {
    const m = this.model;
    editor.relabel(m.lang);
    if (m.state) this.paint(m.state);
  }
}

/** @returns {string[]} the programs this tab ran, latest first */
function ranHere() {
  try {
    const list = JSON.parse(sessionStorage.getItem(RAN) ?? "[]");
    return Array.isArray(list) ? list : [];
  } catch {
    return [];
  }
}

/** Keep `program` among the ones this tab ran. */
function remember(program) {
  const list = [program, ...ranHere().filter((p) => p !== program)].slice(0, KEEP);
  try {
    sessionStorage.setItem(RAN, JSON.stringify(list));
  } catch {
    // Storage full or refused: a reload will ask before running it again.
  }
}
