/**
 * The view state that round-trips through the URL, as TensorFlow Playground's state.ts:
 * `/lessons/<lesson>?<config fields that differ from the defaults>&cursor=<n>`, and for
 * a learner's edit of the lesson `#source=<the program>` (see packSource).
 * A reload, back/forward or a shared link rebuilds the same view from it.
 */

import { numberOrText } from "./format.js";

/**
 * @typedef {Object} ViewState
 * @property {Object<string, *>} config settings that differ from the lesson's defaults
 * @property {number} cursor events executed so far (0 = nothing run yet)
 */

/**
 * Read a value of the URL as the type of the field's default; anything unreadable
 * stays a string, so that the API names the field and its rule.
 * @param {string} text
 * @param {*} fallback the field's default
 */
function typed(text, fallback) {
  if (typeof fallback === "number") return numberOrText(text);
  if (typeof fallback === "boolean") {
    if (text === "true" || text === "1") return true;
    if (text === "false" || text === "0") return false;
  }
  return text;
}

/**
 * The view state in `search` (a URL's query string).
 * @param {string} search
 * @param {string[]} fields the lesson's settings
 * @param {Object<string, *>} defaults
 * @returns {ViewState}
 */
export function deserialize(search, fields, defaults) {
  const params = new URLSearchParams(search);
  /** @type {Object<string, *>} */
  const config = {};
  for (const name of fields) {
    if (params.has(name)) config[name] = typed(params.get(name), defaults[name]);
  }
  const cursorText = params.get("cursor") ?? "0";
  const cursor = /^\d+$/.test(cursorText) ? Number(cursorText) : 0;
  return { config, cursor };
}

/**
 * The query string of a view state (with its "?"; empty for the defaults at cursor 0).
 * @param {ViewState} view
 * @param {string[]} fields
 * @param {Object<string, *>} defaults
 * @returns {string}
 */
export function serialize(view, fields, defaults) {
  const params = new URLSearchParams();
  for (const name of fields) {
    if (name in view.config && view.config[name] !== defaults[name]) {
      params.set(name, String(view.config[name]));
    }
  }
  if (view.cursor > 0) params.set("cursor", String(view.cursor));
  const text = params.toString();
  return text ? `?${text}` : "";
}

/**
 * Only the settings of `config` that differ from the defaults.
 * @param {Object<string, *>} config
 * @param {Object<string, *>} defaults
 */
export function overrides(config, defaults) {
  return Object.fromEntries(Object.entries(config).filter(([name, value]) => value !== defaults[name]));
}

/**
 * Whether two configs resolve to the same settings.
 * @param {Object<string, *>} a
 * @param {Object<string, *>} b
 * @param {Object<string, *>} defaults
 */
export function sameConfig(a, b, defaults) {
  const left = { ...defaults, ...a };
  const right = { ...defaults, ...b };
  return Object.keys({ ...left, ...right }).every((name) => left[name] === right[name]);
}

/**
 * Record a view state in the browser's history: a new entry (`push`) or the current one.
 * @param {ViewState} view
 * @param {{fields: string[], defaults: Object<string, *>, push: boolean, fragment?: string}}
 *   options fragment: the program's (packSource), "" for the lesson's own
 */
export function record(view, { fields, defaults, push, fragment = "" }) {
  const url = `${location.pathname}${serialize(view, fields, defaults)}${fragment}`;
  if (url === `${location.pathname}${location.search}${location.hash}`) return;
  if (push) history.pushState(null, "", url);
  else history.replaceState(null, "", url);
}

/**
 * The view state of the current URL.
 * @param {string[]} fields
 * @param {Object<string, *>} defaults
 * @returns {ViewState}
 */
export function current(fields, defaults) {
  return deserialize(location.search, fields, defaults);
}

/** The most a link's program may hold: the server's cap on edited code (UTF-8 bytes). */
export const MAX_SOURCE_BYTES = 32 * 1024;

/**
 * The URL fragment that carries a program: `#source=` and its UTF-8, compressed with
 * deflate-raw (CompressionStream), in base64url. A fragment never reaches the server, and
 * the page runs what a link carries only after a click (edit.js).
 * @param {string} source
 * @returns {Promise<string>}
 */
export async function packSource(source) {
  const stream = new Blob([source]).stream().pipeThrough(new CompressionStream("deflate-raw"));
  const bytes = new Uint8Array(await new Response(stream).arrayBuffer());
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return `#source=${btoa(binary).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "")}`;
}

/**
 * The program a URL fragment carries (see packSource), or null when it carries none.
 * @param {string} hash location.hash
 * @returns {Promise<string|null>}
 * @throws {Error} with a sentence for the reader when the fragment cannot be read
 */
export async function unpackSource(hash) {
  const packed = new URLSearchParams(hash.replace(/^#/, "")).get("source");
  if (packed === null) return null;
  const unreadable = new Error("The code in this link cannot be read (the link may have been cut short): the lesson's own code is shown instead.");
  let bytes;
  try {
    bytes = Uint8Array.from(atob(packed.replaceAll("-", "+").replaceAll("_", "/")), (c) => c.charCodeAt(0));
  } catch {
    throw unreadable;
  }
  const reader = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate-raw")).getReader();
  const parts = [];
  let size = 0;
  try {
    // Read no more than the cap: a small link may unpack to gigabytes.
    for (let part = await reader.read(); !part.done; part = await reader.read()) {
      size += part.value.length;
      if (size > MAX_SOURCE_BYTES) {
        reader.cancel().catch(() => null);
        throw new RangeError();
      }
      parts.push(part.value);
    }
  } catch (error) {
    if (error instanceof RangeError) {
      throw new Error(`The code in this link is over ${MAX_SOURCE_BYTES / 1024} KiB, the most a program may hold: the lesson's own code is shown instead.`);
    }
    throw unreadable;
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(await new Blob(parts).arrayBuffer());
  } catch {
    throw unreadable;
  }
}
