/** The loss chart (uPlot): the training loss of each iteration, on a linear or log scale. */

import { field, h } from "../dom.js";
import { num, precise } from "../format.js";
import { uPlot } from "../vendor.js";

const panel = /** @type {HTMLElement} */ (document.querySelector(".loss-panel"));
const box = /** @type {HTMLElement} */ (panel.querySelector('[data-testid="losses"]'));
const HEIGHT = 190;
/** The chart's data alternative: the same losses as a table, filled while it is open. */
const tableBox = /** @type {HTMLDetailsElement} */ (panel.querySelector("details.loss-data"));

/** "linear" or "log": the scale of the loss axis. */
let scale = localStorage.getItem("agx.loss-scale") === "log" ? "log" : "linear";
/** @type {uPlot|null} */
let plot = null;
/** What the chart shows now, to redraw on a scale or theme change. */
let shown = { losses: /** @type {(number|null)[]} */ ([]), iterations: 1 };

/** Wire the scale toggle and keep the chart as wide as its panel and in the page's theme. */
export function bind() {
  panel.querySelector(".panel-tools").addEventListener("click", (event) => {
    const button = event.target.closest("button[data-scale]");
    if (!button || button.dataset.scale === scale) return;
    scale = button.dataset.scale;
    localStorage.setItem("agx.loss-scale", scale);
    rebuild();
  });
  new ResizeObserver(() => plot?.setSize({ width: width(), height: HEIGHT })).observe(box);
  tableBox.addEventListener("toggle", fillTable);
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", rebuild);
  rebuild();
}

/**
 * Show the losses so far.
 * @param {(number|null)[]} losses one per finished iteration
 * @param {number} iterations of the whole run: the x axis spans them
 */
export function render(losses, iterations) {
  const same = iterations === shown.iterations && losses.length === shown.losses.length && losses.every((v, i) => v === shown.losses[i]);
  if (same && plot) return;
  const resized = iterations !== shown.iterations;
  shown = { losses: [...losses], iterations };
  /** The loss of the last finished iteration t. */
  field(panel, "loss-last").textContent = losses.length ? `t = ${losses.length - 1}: ${num(losses.at(-1))}` : "no iteration finished yet";
  box.dataset.count = String(losses.length);
  if (resized || !plot) rebuild();
  else plot.setData(data());
  fillTable();
}

/** One row per finished iteration: t and its loss in six significant digits. */
function fillTable() {
  if (!tableBox.open) return;
  const rows = shown.losses.map((loss, t) => h("tr", {}, h("td", { text: String(t) }), h("td", { text: precise(loss) })));
  tableBox.querySelector("tbody").replaceChildren(...(rows.length ? rows : [h("tr", {}, h("td", { colspan: 2, class: "muted", text: "no iteration finished yet" }))]));
}

function data() {
  const xs = shown.losses.map((_, i) => i);
  const ys = shown.losses.map((v) => (v === null || (scale === "log" && v <= 0) ? null : v));
  return [xs, ys];
}

/**
 * Labels of the loss axis with just enough digits to tell neighbouring ticks apart.
 * @param {number[]} ticks
 */
function tickLabels(ticks) {
  const shown = ticks.filter(Number.isFinite);
  const step = shown.length > 1 ? Math.abs(shown[1] - shown[0]) : 1;
  const top = Math.max(0, ...shown.map(Math.abs));
  const wide = scale === "log" || top >= 1e6 || (top > 0 && top < 1e-3);
  const decimals = Math.min(8, Math.max(0, -Math.floor(Math.log10(step || 1))));
  return ticks.map((t) => {
    if (!Number.isFinite(t)) return "";
    return wide ? num(t) : t.toFixed(decimals).replace("-", "−");
  });
}

function width() {
  return Math.max(box.clientWidth, 200);
}

function rebuild() {
  for (const button of panel.querySelectorAll("button[data-scale]")) {
    button.setAttribute("aria-pressed", String(button.dataset.scale === scale));
  }
  plot?.destroy();
  const css = getComputedStyle(box);
  const color = (name) => css.getPropertyValue(name).trim();
  const axis = {
    stroke: color("--muted"),
    grid: { stroke: color("--grid"), width: 1 },
    ticks: { stroke: color("--grid"), width: 1 },
    font: `11px ${color("--font-ui") || "system-ui"}`,
  };
  const last = Math.max(shown.iterations - 1, 1);
  plot = new uPlot(
    {
      width: width(),
      height: HEIGHT,
      legend: { show: false },
      cursor: { drag: { x: false, y: false }, points: { size: 7 } },
      scales: {
        x: { time: false, range: () => [0, last] },
        y: { distr: scale === "log" ? 3 : 1 },
      },
      axes: [
        { ...axis, label: "iteration t", labelSize: 18, labelFont: axis.font },
        { ...axis, size: 62, values: (_, ticks) => tickLabels(ticks) },
      ],
      series: [
        {},
        {
          label: "loss",
          stroke: color("--accent"),
          width: 2,
          fill: color("--accent-soft"),
          points: { show: shown.losses.length <= 40, size: 5, fill: color("--accent") },
          spanGaps: false,
        },
      ],
    },
    data(),
    box,
  );
}
