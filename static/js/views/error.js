/**
 * The error panel: the exception the lesson raised, explained in plain words; for the
 * in-place error, the line that failed, the node whose saved tensor went stale and a way
 * back to the operation that changed it.
 */

import { field, h, replace } from "../dom.js";

const panel = /** @type {HTMLElement} */ (document.querySelector(".error-panel"));

/**
 * Wire the links of the panel.
 * @param {{onLine: (line: number) => void, onWhere: (stale: Stale) => void}} handlers
 */
export function bind({ onLine, onWhere }) {
  panel.addEventListener("click", (event) => {
    const button = event.target.closest("button");
    if (button?.dataset.gotoLine) onLine(Number(button.dataset.gotoLine));
    else if (button?.dataset.action === "where-changed" && shownStale) onWhere(shownStale);
  });
}

/**
 * @typedef {Object} Stale a tensor saved for backward and modified in place since
 * @property {string} node the name of the node that saved it, e.g. SigmoidBackward0
 * @property {string} nodeId that node's id in the graph
 * @property {string} saved the name it is saved under (result, self, …)
 * @property {string|null} of its name in the lesson's scope
 * @property {number} versionSaved its version counter when autograd saved it
 * @property {number} versionNow its version counter now
 * @property {number|null} changedAt the cursor of the in-place op that changed it since
 */

/** The stale tensor on screen, for the "Show where it changed" button. */
let shownStale = null;

/** The panel's own words about where the error comes from. */
const WHERE = {
  en: {
    line: (n) => `Raised by line ${n}:`,
    stale: (s) => [`${s.node} saved `, code(s.of ?? s.saved), ` (as ${s.saved}) at version ${s.versionSaved}; `, code(s.of ?? s.saved), ` is now at version ${s.versionNow}.`],
    button: "Show where it changed",
  },
  zh: {
    line: (n) => `由第 ${n} 行引发：`,
    stale: (s) => [`${s.node} 在版本 ${s.versionSaved} 时保存了 `, code(s.of ?? s.saved), `（保存为 ${s.saved}）；`, code(s.of ?? s.saved), ` 现在的版本是 ${s.versionNow}。`],
    button: "显示在哪里被修改",
  },
};

function code(text) {
  return h("code", { text });
}

/**
 * Explanations of errors a lesson (or a learner's edit of one) can raise, each a test on
 * "Type: message" and paragraphs in English and Chinese. `{saved}` and `{now}` are the
 * versions named in the message.
 */
const EXPLANATIONS = [
  {
    test: /modified by an inplace operation/,
    en: [
      "Every tensor carries a version counter (tensor._version) that goes up by one each time the tensor is changed in place: by an operation whose name ends in an underscore such as mul_ or clamp_, or by +=, -=, *=.",
      "When autograd saves a tensor for the backward pass, it also notes the version the tensor had at that moment. Here the tensor was saved at version {saved}, then modified in place, so it is now at version {now}.",
      "During backward the node that needs it compares the two versions. They differ, so the values it would read are not the ones its gradient formula was derived from: rather than return a wrong gradient, PyTorch stops with this error.",
      "Fixes: use the out-of-place form (b = b * 2 instead of b.mul_(2)), modify a copy (b.clone()), or, in a custom autograd.Function that overwrites its input, declare it with ctx.mark_dirty as Part 1 of this lesson does. In the graph, the node whose saved tensor went stale is outlined in red.",
    ],
    zh: [
      "每个张量都有一个版本计数器（tensor._version）：每次原地修改（以下划线结尾的运算，如 mul_、clamp_，或 +=、-=、*=）都会让它加一。",
      "autograd 为反向传播保存张量时，会同时记下张量当时的版本。这里张量在版本 {saved} 时被保存，随后被原地修改，现在的版本是 {now}。",
      "反向传播时，需要它的节点会比较这两个版本。版本不同，说明它将读到的数值已不是推导梯度公式时的数值：PyTorch 宁可报这个错，也不返回错误的梯度。",
      "改法：使用非原地写法（b = b * 2 而不是 b.mul_(2)），修改一个副本（b.clone()），或者在会覆盖输入的自定义 autograd.Function 中像本课第一部分那样用 ctx.mark_dirty 声明。图中保存的张量已过期的节点用红色边框标出。",
    ],
  },
  {
    test: /out of memory/i,
    en: ["The device ran out of memory for this configuration. Lower N, D_in, H or D_out, or run on another device."],
    zh: ["该设备的内存不足以运行这个配置。请减小 N、D_in、H 或 D_out，或换一个设备运行。"],
  },
  {
    test: /^MemoryError|can't allocate memory|Cannot allocate memory/,
    en: ["The program asked for more memory than a session may use (the server's AGX_MAX_SESSION_BYTES budget, enforced by the operating system). Make its tensors smaller: lower N, D_in, H or D_out, or the sizes your code creates."],
    zh: ["程序申请的内存超过了一个会话可用的上限（服务器的 AGX_MAX_SESSION_BYTES 预算，由操作系统强制执行）。请把张量变小：减小 N、D_in、H 或 D_out，或者你的代码创建的张量的尺寸。"],
  },
  {
    test: /^EventLimit/,
    en: ["Your program ran as many steps (events) as an edited program may run on this server. Give it fewer iterations, or a shorter loop."],
    zh: ["你的程序运行的步数（事件）已达到本服务器上编辑过的程序的上限。请减少迭代次数，或缩短循环。"],
  },
  {
    test: /edited code may not import/,
    en: ["Edited code may import torch, numpy and standard modules that only compute (math, random, collections, …): it runs in a sandbox with no files, network or other programs."],
    zh: ["编辑过的代码可以导入 torch、numpy 以及只做计算的标准模块（math、random、collections 等）：它在沙箱中运行，没有文件、网络或其他程序可用。"],
  },
  {
    test: /\[Errno (1|13)\]|Operation not permitted|Permission denied/,
    en: ["Edited code runs in a sandbox: it can compute with torch and numpy, but not read or write files, open network connections or start or signal other programs. The operating system refused this call."],
    zh: ["编辑过的代码在沙箱中运行：它可以用 torch 和 numpy 计算，但不能读写文件、建立网络连接，也不能启动其他程序或向其发送信号。操作系统拒绝了这个调用。"],
  },
  {
    test: /^RecursionError/,
    en: ["A function called itself (directly or through others) more deeply than Python allows: check that the recursion has a case that stops it."],
    zh: ["某个函数（直接或间接地）调用自身的层数超过了 Python 允许的深度：请检查递归是否有终止的情况。"],
  },
  {
    test: /does not require grad|element 0 of tensors/,
    en: ["backward() was called on a tensor that autograd did not record: none of the tensors it was computed from has requires_grad=True."],
    zh: ["对一个 autograd 没有记录的张量调用了 backward()：计算它的张量中没有一个设置了 requires_grad=True。"],
  },
];

/**
 * Show the state's error, or hide the panel when there is none.
 * @param {null|{type: string, message: string}} error
 * @param {string} lang "en" or "zh"
 * @param {{line?: number|null, lineText?: string, stale?: Stale|null}} [where] the line
 *   that raised it and, for the in-place error, the saved tensor that went stale
 */
export function render(error, lang, { line = null, lineText = "", stale = null } = {}) {
  panel.hidden = !error;
  shownStale = error ? stale : null;
  if (!error) return;
  /** The exception's class, e.g. RuntimeError. */
  field(panel, "error-type").textContent = error.type;
  /** PyTorch's own message, verbatim. */
  field(panel, "error-message").textContent = error.message;
  const explanation = EXPLANATIONS.find((entry) => entry.test.test(`${error.type}: ${error.message}`));
  const versions = /is at version (\d+); expected version (\d+)/.exec(error.message);
  const fill = (text) => text.replace("{now}", versions?.[1] ?? "n+1").replace("{saved}", versions?.[2] ?? "n");
  const paragraphs = explanation
    ? explanation[lang] ?? explanation.en
    : [lang === "zh" ? "课程程序在刚运行的那一行抛出了这个异常。" : "The lesson program raised this exception on the line that ran last."];
  const words = WHERE[lang] ?? WHERE.en;
  const where = field(panel, "error-where");
  where.lang = lang;
  replace(
    where,
    /** The 1-based line of the lesson that raised the exception. */
    line ? h("p", { "data-field": "failing-line" }, words.line(line), " ", h("button", { type: "button", class: "link code-link", data: { gotoLine: String(line) } }, code(lineText.trim() || `line ${line}`))) : null,
    /** The saved tensor's version counter when saved and now: they differ, so backward refuses. */
    stale ? h("p", { "data-field": "stale", data: { node: stale.nodeId } }, ...words.stale(stale)) : null,
    stale?.changedAt != null ? h("button", { type: "button", class: "btn small", data: { action: "where-changed" }, text: words.button }) : null,
  );
  where.hidden = !line && !stale;
  const box = field(panel, "error-explain");
  box.lang = explanation?.[lang] ? lang : "en";
  box.replaceChildren(
    // Folded by default, so the variables stay in sight beside the error; it stays as
    // the learner leaves it from one state to the next.
    h("summary", { text: lang === "zh" ? "这是什么意思？" : "What does this mean?" }),
    ...paragraphs.map((text) => h("p", { text: fill(text) })),
  );
}
