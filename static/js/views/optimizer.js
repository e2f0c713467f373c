/** The optimizer panel: the optimizer's type and its per-parameter state. */

import { h, replace } from "../dom.js";
import { num, shape } from "../format.js";

const box = /** @type {HTMLElement} */ (document.querySelector('.optim-panel [data-field="optimizer"]'));

/**
 * Show the optimizer state.
 * @param {null|{type: string, state: Object<string, Object>}} optimizer the State's `optimizer`
 */
export function render(optimizer) {
  if (!optimizer) {
    box.replaceChildren(h("p", { class: "empty", text: "No torch.optim optimizer in this lesson (yet): the update is written out by hand." }));
    return;
  }
  const params = Object.entries(optimizer.state ?? {});
  const rows = params.flatMap(([param, entry]) => {
    const buffers = Object.entries(entry).filter(([key]) => key !== "step");
    /** step: how many updates the optimizer has applied to this parameter. */
    const step = entry.step ?? "–";
    if (!buffers.length) return [h("tr", {}, h("th", { scope: "row", text: param }), h("td", { text: String(step) }), h("td", { text: "–" }), h("td", {}), h("td", {}))];
    return buffers.map(([key, value], i) =>
      h(
        "tr",
        {},
        i === 0 ? h("th", { scope: "row", rowspan: buffers.length, text: param }) : null,
        i === 0 ? h("td", { rowspan: buffers.length, text: String(step) }) : null,
        /** A buffer of the optimizer: Adam's exp_avg and exp_avg_sq, SGD's momentum_buffer. */
        h("td", { text: key }),
        h("td", { text: isTensor(value) ? shape(value.shape) : "" }),
        /** The buffer's L2 norm (or its value when it is a number). */
        h("td", { text: isTensor(value) ? num(value.stats?.norm) : num(value) }),
      ),
    );
  });
  replace(
    box,
    h("p", {}, h("span", { class: "chip", text: optimizer.type }), params.length ? "" : " no state: Adam and SGD with momentum make theirs at the first optimizer.step(); plain SGD keeps none"),
    params.length
      ? h(
          "div",
          { class: "table-wrap" },
          h(
            "table",
            { class: "mini" },
            h("thead", {}, h("tr", {}, ...["parameter", "step", "buffer", "shape", "norm"].map((text) => h("th", { scope: "col", text })))),
            h("tbody", {}, ...rows),
          ),
        )
      : null,
  );
}

function isTensor(value) {
  return value !== null && typeof value === "object" && "shape" in value;
}
