/**
 * Where did a tensor's version counter change? The API has no history of versions, so
 * walk the session's states back with seek, one event at a time, and stop at the first
 * cursor where the tensor is at the version in question.
 */

import * as api from "./api.js";

/** Events walked back at most: a search that finds nothing stops here. */
export const MAX_WALK = 200;

/**
 * The cursor of the event after which `name` first had `version` (the in-place op that
 * bumped it), searching back from `cursor`. The session is left at the cursor found, or
 * back at `cursor` when none is found within MAX_WALK events.
 * @param {string} id the session
 * @param {string} name a variable in scope
 * @param {number} version the version counter to trace back
 * @param {number} cursor where the search starts (its state has `name` at `version`)
 * @returns {Promise<{state: Object|null, walked: number}>} the state at the cursor found
 *   (null: none), and how many events were walked back
 */
export async function findChange(id, name, version, cursor) {
  const floor = Math.max(0, cursor - MAX_WALK);
  for (let at = cursor - 1; at >= floor; at -= 1) {
    const state = await api.seek(id, at);
    const seen = state.variables[name];
    // One event later, the tensor had the version: that event's op changed it.
    if (!seen || seen.version < version) return { state: await api.seek(id, at + 1), walked: cursor - at };
  }
  await api.seek(id, cursor);
  return { state: null, walked: cursor - floor };
}
