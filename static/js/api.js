/** The REST API of DESIGN.md §5: one function per call the page makes. */

/** An error answer of the API; `detail` is the sentence it gave. */
export class ApiError extends Error {
  /**
   * @param {number} status HTTP status
   * @param {string} detail the API's sentence
   */
  constructor(status, detail, errors = [], { line = null, column = null } = {}) {
    super(detail);
    this.name = "ApiError";
    /** HTTP status code of the answer (0 when the server could not be reached). */
    this.status = status;
    /** The sentence the API gave, meant for the user. */
    this.detail = detail;
    /** @type {{field: string, detail: string}[]} every invalid config field, when the API listed them */
    this.errors = errors;
    /** Where an edited program's syntax error is (1-based), when the API said. */
    this.line = line;
    this.column = column;
  }
}

async function call(method, path, { body, signal, as = "json" } = {}) {
  const init = { method, signal, headers: { Accept: as === "json" ? "application/json" : "*/*" } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (error) {
    if (error.name === "AbortError") throw error;
    throw new ApiError(0, "The server cannot be reached; check that it is running and try again.");
  }
  if (!response.ok) {
    let detail = `The server answered ${response.status} ${response.statusText}.`;
    let errors = [];
    const where = {};
    try {
      const payload = await response.json();
      if (typeof payload.detail === "string") detail = payload.detail;
      else if (Array.isArray(payload.detail) && payload.detail[0]?.msg) detail = payload.detail[0].msg;
      if (Array.isArray(payload.errors)) errors = payload.errors;
      if (Number.isInteger(payload.line)) where.line = payload.line;
      if (Number.isInteger(payload.column)) where.column = payload.column;
    } catch {
      // Not JSON: keep the status line.
    }
    throw new ApiError(response.status, detail, errors, where);
  }
  if (response.status === 204) return null;
  return as === "text" ? response.text() : response.json();
}

const session = (id) => `/api/sessions/${encodeURIComponent(id)}`;

/** @returns {Promise<{id: string, name: string}[]>} the devices lessons can run on */
export const devices = () => call("GET", "/api/devices");

/**
 * Ask whether `config` would be accepted for `lesson`, without an error answer
 * (a refused config is a 200 here, so the browser logs no failed request).
 * @returns {Promise<{valid: boolean, config: ?Object, field: ?string, detail: ?string,
 *   errors: {field: string, detail: string}[]}>}
 */
export const checkConfig = (lesson, config) =>
  call("POST", `/api/lessons/${encodeURIComponent(lesson)}/config`, { body: config });

/**
 * Start a session of `lesson`; `config` holds the settings that differ from its defaults.
 * With `source`, the session runs that program in place of the lesson's file (403 where
 * the server runs no edited code, 422 with `line` and `column` for a syntax error).
 * @param {string} lesson
 * @param {Object<string, *>} config
 * @param {string|null} [source]
 * @returns {Promise<Object>} State
 */
export const createSession = (lesson, config, source = null) =>
  call("POST", "/api/sessions", { body: source === null ? { lesson, config } : { lesson, config, source } });

/**
 * A step of one (the page repaints after it) also brings the graph and its layout in
 * `state.view` (`?view=graph`): one round trip; chunks of a run to the end do not.
 * @returns {Promise<Object>} State after `count` steps of kind `by`
 */
export const step = (id, by, count = 1) =>
  call("POST", `${session(id)}/step${count === 1 ? "?view=graph" : ""}`, { body: { by, count } });

/** Stop the session's step in flight at its next event (202 also when none runs). */
export const cancel = (id) => call("POST", `${session(id)}/cancel`);

/** @returns {Promise<Object>} State at `cursor`, with `view` (graph and layout) */
export const seek = (id, cursor) => call("POST", `${session(id)}/seek?view=graph`, { body: { cursor } });

/** @returns {Promise<{graph: Object, layout: Object}>} the graph and where to draw it */
export const graphView = (id, signal) => call("GET", `${session(id)}/graph/view`, { signal });

/** @returns {Promise<Object>} Graph JSON */
export const graph = (id, signal) => call("GET", `${session(id)}/graph`, { signal });

/** @returns {Promise<string>} the graph as SVG markup */
export const graphSvg = (id, signal) => call("GET", `${session(id)}/graph.svg`, { signal, as: "text" });

/** @returns {Promise<Object>} TensorDetail of a variable (or `<name>.grad`) */
export const tensor = (id, name, signal) =>
  call("GET", `${session(id)}/tensors/${encodeURIComponent(name)}`, { signal });

/**
 * Check one element of a parameter's gradient against a central difference of the loss
 * (DESIGN.md §5.1); the session does not move.
 * @param {string} id
 * @param {string} name a parameter, named as in `variables` (w1, model.0.weight)
 * @param {number[]} index the element, one index per dimension
 * @returns {Promise<Object>} {tensor, index, iteration, analytic, numeric, eps, rel_error, negligible, kink, grad}
 */
export const gradcheck = (id, name, index) =>
  call("POST", `${session(id)}/gradcheck`, { body: { tensor: name, index } });

/**
 * Any element of a gradient in a node's ledger (the ledger keeps a top-left block only):
 * side "outputs" for what arrived, "inputs" for what it sent; the session does not move.
 * @param {string} id
 * @param {string} node the node's id
 * @param {"inputs"|"outputs"} side
 * @param {number} k which of grad_inputs or grad_outputs
 * @param {number[]} index one index per dimension
 * @returns {Promise<{value: number|null, index: number[], shape: number[]}>}
 */
export function gradElement(id, node, side, k, index) {
  const query = new URLSearchParams({ side, k: String(k) });
  for (const i of index) query.append("index", String(i));
  return call("GET", `${session(id)}/graph/nodes/${encodeURIComponent(node)}/grad?${query}`);
}

/** Delete a session, also while the page unloads (keepalive). */
export function deleteSession(id) {
  return fetch(session(id), { method: "DELETE", keepalive: true }).catch(() => null);
}
