#!/usr/bin/env bash
# Rebuild static/vendor/codemirror/ (the explorer's code editor) from npm, with the exact
# versions of scripts/codemirror/package-lock.json:
#   codemirror.js  one minified ES module: what scripts/codemirror/entry.js exports, bundled
#                  once with esbuild (the page has no build step; it imports this file)
#   LICENSE        the licence of every package the bundle contains (all MIT), each under
#                  its name and version, as esbuild's metafile lists them
# Nothing is installed in the repository: npm ci runs in a temporary folder.
# To update a version: change it in scripts/codemirror/package.json, run
# `npm install --package-lock-only` there, then this script, and commit all four files.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
spec="$root/scripts/codemirror"
dest="$root/static/vendor/codemirror"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cp "$spec/package.json" "$spec/package-lock.json" "$spec/entry.js" "$work/"
cd "$work"
# --ignore-scripts: esbuild's binary comes as its platform's optional package anyway.
npm ci --ignore-scripts --no-audit --no-fund

versions="$(node -p "const d = require('./package.json').dependencies; Object.keys(d).filter((n) => n.startsWith('@codemirror/')).map((n) => n + ' ' + d[n]).join(', ')")"
mkdir -p "$dest"
npx --no-install esbuild entry.js --bundle --format=esm --minify --legal-comments=none \
  --target=es2020 --metafile=meta.json --outfile="$dest/codemirror.js" \
  --banner:js="/* CodeMirror 6 (https://codemirror.net, MIT: LICENSE beside this file): $versions; built by scripts/vendor-codemirror.sh */"

node - "$dest/LICENSE" <<'EOF'
// One LICENSE for the bundle: each package with code in it, its version and licence text.
const fs = require("fs");
const path = require("path");
const meta = JSON.parse(fs.readFileSync("meta.json", "utf8"));
const [output] = Object.values(meta.outputs);
const folders = new Set();
for (const [input, { bytesInOutput }] of Object.entries(output.inputs)) {
  if (!bytesInOutput) continue; // parsed, but nothing of it is left in the bundle
  const match = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
  if (match) folders.add(match[1]);
}
const parts = [...folders].sort().map((folder) => {
  const info = JSON.parse(fs.readFileSync(path.join(folder, "package.json"), "utf8"));
  const file = fs.readdirSync(folder).find((name) => /^licen[cs]e/i.test(name));
  if (!file) throw new Error(`${info.name} ships no licence file`);
  if (info.license !== "MIT") throw new Error(`${info.name} is ${info.license}, not MIT`);
  const text = fs.readFileSync(path.join(folder, file), "utf8").trim();
  return `${info.name} ${info.version} (${info.license})\n\n${text}\n`;
});
const head = "The packages bundled into codemirror.js (scripts/vendor-codemirror.sh), each with its licence.\n";
fs.writeFileSync(process.argv[2], [head, ...parts].join(`\n${"-".repeat(78)}\n\n`));
EOF

echo "wrote $dest/codemirror.js ($(wc -c <"$dest/codemirror.js") bytes) and its LICENSE"
