/**
 * The vendored libraries as ES modules. uPlot ships one; svg-pan-zoom is a UMD bundle
 * that can only announce itself on `window`, so take it from there and remove it again.
 * CodeMirror (one bundle, static/vendor/codemirror/) loads when edit mode first needs it.
 */

import "../vendor/svg-pan-zoom/svg-pan-zoom.min.js";

export { default as uPlot } from "../vendor/uplot/uPlot.esm.js";

/** @type {Function} svgPanZoom(svgElement, options) */
export const svgPanZoom = globalThis.svgPanZoom;
delete globalThis.svgPanZoom;

/** @returns {Promise<Object>} the CodeMirror module (scripts/codemirror/entry.js says what it holds) */
export const codemirror = () => import("../vendor/codemirror/codemirror.js");
