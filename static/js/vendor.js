/**
 * The vendored libraries as ES modules. uPlot ships one; svg-pan-zoom is a UMD bundle
 * that can only announce itself on `window`, so take it from there and remove it again.
 */

import "../vendor/svg-pan-zoom/svg-pan-zoom.min.js";

export { default as uPlot } from "../vendor/uplot/uPlot.esm.js";

/** @type {Function} svgPanZoom(svgElement, options) */
export const svgPanZoom = globalThis.svgPanZoom;
delete globalThis.svgPanZoom;
