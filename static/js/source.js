/**
 * What the page works out from a program's source by itself: which lines of a learner's
 * edit are the lesson's own (their notes follow them), the phases its tags give, and its
 * colouring (lezer's Python parser, with the token classes of the server's colouring).
 */

/** The phases a `# [phase]` tag may name (DESIGN.md §4). */
const PHASES = new Set(["setup", "forward", "loss", "backward", "update", "zero_grad"]);
const TAG = /^\s*#\s*\[(\w+)\]/;
/** Names the server's colouring (app/api/pages.py) marks as builtins and constants. */
const BUILTINS = /\b(?:range|print|float|int|len|abs|max|min|super)\b/g;
const CONSTANTS = /\b(?:self|ctx)\b/g;

/**
 * The lines of `source` as Python numbers them: a last newline ends the last line.
 * @param {string} source
 * @returns {string[]}
 */
export function lines(source) {
  const all = source.split(/\r\n|\r|\n/);
  if (all.length > 1 && all.at(-1) === "") all.pop();
  return all;
}

/**
 * The lines of `after` that are lines of `before` left unchanged, as the server matches
 * them (difflib.SequenceMatcher's matching blocks, without junk): a line keeps its note
 * when it is the same text, even if lines were added or removed above it.
 * @param {string[]} before the lesson's lines
 * @param {string[]} after the edit's lines
 * @returns {Map<number, number>} 1-based line of `after` → 1-based line of `before`
 */
export function unchanged(before, after) {
  /** @type {Map<string, number[]>} where each text occurs in `after` */
  const where = new Map();
  after.forEach((text, j) => {
    if (!where.has(text)) where.set(text, []);
    where.get(text).push(j);
  });
  const kept = new Map();
  const queue = [[0, before.length, 0, after.length]];
  while (queue.length) {
    const [alo, ahi, blo, bhi] = queue.pop();
    // The longest run of equal lines, earliest in `before`, then earliest in `after`.
    let [besti, bestj, best] = [alo, blo, 0];
    let runs = new Map();
    for (let i = alo; i < ahi; i++) {
      const next = new Map();
      for (const j of where.get(before[i]) ?? []) {
        if (j < blo) continue;
        if (j >= bhi) break;
        const k = (runs.get(j - 1) ?? 0) + 1;
        next.set(j, k);
        if (k > best) [besti, bestj, best] = [i - k + 1, j - k + 1, k];
      }
      runs = next;
    }
    if (!best) continue;
    for (let k = 0; k < best; k++) kept.set(bestj + k + 1, besti + k + 1);
    if (alo < besti && blo < bestj) queue.push([alo, besti, blo, bestj]);
    if (besti + best < ahi && bestj + best < bhi) queue.push([besti + best, ahi, bestj + best, bhi]);
  }
  return kept;
}

/**
 * The phase of each line, from the program's `# [phase]` tags as the server reads them: a
 * tag holds until the next one, and one inside a function body only to the end of that
 * function; the training loop's header takes the phase of its body. Function bodies are
 * told by their indentation here (the server reads Python's syntax tree).
 * @param {string[]} text the program's lines
 * @returns {string[]} one phase per line
 */
export function phases(text) {
  const result = [];
  /** @type {{indent: number, phase: string}[]} the functions the line is inside */
  const open = [];
  /** Blank lines so far: inside a function only if the next line with text is. */
  let blank = [];
  let phase = "setup";
  const settle = (indent) => {
    while (open.length && indent <= open.at(-1).indent) phase = open.pop().phase;
    for (const n of blank) result[n] = phase;
    blank = [];
  };
  text.forEach((line, n) => {
    const indent = line.search(/\S/);
    if (indent < 0) {
      blank.push(n);
      return;
    }
    settle(indent);
    const tag = TAG.exec(line);
    if (tag && PHASES.has(tag[1])) phase = tag[1];
    result[n] = phase;
    if (/^\s*(?:async\s+)?def\s/.test(line)) open.push({ indent, phase });
  });
  settle(0);
  const loop = text.findIndex((line) => /^for\s.*\brange\(\s*iterations\s*\)\s*:/.test(line));
  const body = loop < 0 ? -1 : text.findIndex((line, n) => n > loop && /^\s+\S/.test(line) && !/^\s*#/.test(line));
  if (body > 0) result[loop] = result[body];
  return result;
}

/** @type {WeakMap<Object, Object>} each CodeMirror module's highlighter */
const highlighters = new WeakMap();

/**
 * The highlighter that gives lezer's Python tokens the classes of the server's colouring
 * (static/css/code.css), for the editor and for the listing of an edited program.
 * @param {Object} cm the vendored CodeMirror module
 */
export function highlighter(cm) {
  if (!highlighters.has(cm)) {
    const t = cm.tags;
    highlighters.set(
      cm,
      cm.tagHighlighter([
        { tag: t.keyword, class: "tok-kw" },
        { tag: [t.string, t.special(t.string)], class: "tok-str" },
        { tag: t.number, class: "tok-num" },
        { tag: t.comment, class: "tok-com" },
        { tag: [t.function(t.definition(t.variableName)), t.definition(t.className)], class: "tok-def" },
        { tag: [t.bool, t.null], class: "tok-const" },
      ]),
    );
  }
  return highlighters.get(cm);
}

/**
 * The coloured runs of each line of `source`.
 * @param {Object} cm the vendored CodeMirror module
 * @param {string} source
 * @returns {Array<Array<[string, string]>>} per line, [text, class] runs ("" for plain)
 */
export function colour(cm, source) {
  const text = lines(source).join("\n");
  /** @type {string[]} the class of each character */
  const classes = new Array(text.length).fill("");
  cm.highlightTree(cm.pythonLanguage.parser.parse(text), highlighter(cm), (from, to, css) => {
    for (let i = from; i < to; i++) classes[i] = css;
  });
  const paint = (pattern, css) => {
    for (const match of text.matchAll(pattern)) {
      const end = match.index + match[0].length;
      const kind = classes[match.index];
      if (kind === "" || (kind === "tok-kw" && css === "tok-bi")) classes.fill(css, match.index, end);
    }
  };
  paint(BUILTINS, "tok-bi");
  paint(CONSTANTS, "tok-const");
  const result = [];
  let start = 0;
  for (const line of text.split("\n")) {
    const runs = [];
    const tagged = TAG.test(line);
    for (let col = 0; col < line.length; ) {
      let end = col + 1;
      while (end < line.length && classes[start + end] === classes[start + col]) end++;
      const css = classes[start + col];
      runs.push([line.slice(col, end), css === "tok-com" && tagged ? "tok-tag" : css]);
      col = end;
    }
    result.push(runs);
    start += line.length + 1;
  }
  return result;
}
