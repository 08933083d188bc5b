#!/usr/bin/env bash
# The VS Code extension's checks: its npm dependencies (installed only when
# missing or out of date with package-lock.json), the TextMate grammar tests,
# and a .vsix that packs the language client. Prints one line per step and
# a step's full output only when it fails.
set -euo pipefail
cd "$(dirname "$0")/../editors/vscode"

log="$(mktemp)"
trap 'rm -f "$log"' EXIT

run() { # run STEP COMMAND...: quiet unless the command fails
  local step="$1"
  shift
  if ! "$@" >"$log" 2>&1; then
    cat "$log" >&2
    echo "editors: $step FAILED" >&2
    exit 1
  fi
}

command -v npm >/dev/null || { echo "editors: npm is not installed" >&2; exit 1; }

# (a) Dependencies. `npm ci` leaves a stamp with the lockfile's hash; a
# missing or different stamp means node_modules is absent or stale.
stamp=node_modules/.weir-lock-sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ ! -d node_modules ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  run "npm ci" npm ci --no-audit --no-fund
  echo "$want" >"$stamp"
  echo "editors: npm ci: installed the dependencies of package-lock.json"
else
  echo "editors: npm ci: node_modules matches package-lock.json, skipped"
fi

# (b) Grammar tests: every `^`/`<-` assertion in tests/grammar/*.weir.
run "grammar tests" npm run --silent test:grammar
files=$(ls tests/grammar/*.weir | wc -l)
asserts=$(cat tests/grammar/*.weir | grep -cE '^//[[:space:]]*(\^|<~*-)')
echo "editors: grammar tests: $asserts assertions in $files files passed"

# (c) The .vsix: it must hold the manifest and the language client that
# src/extension.js requires at run time.
rm -f weir.vsix
run "vsix" npm run --silent package
if command -v unzip >/dev/null; then
  listing="$(unzip -Z1 weir.vsix)"
else
  listing="$(python3 -m zipfile -l weir.vsix | awk 'NR > 1 { print $1 }')"
fi
for want in extension/package.json \
  extension/syntaxes/weir.tmLanguage.json \
  extension/src/extension.js \
  extension/node_modules/vscode-languageclient/package.json \
  extension/node_modules/vscode-languageclient/node.js; do
  if ! grep -qxF "$want" <<<"$listing"; then
    echo "editors: vsix FAILED: weir.vsix has no $want" >&2
    exit 1
  fi
done
echo "editors: vsix: weir.vsix, $(wc -l <<<"$listing") files, $(wc -c <weir.vsix) bytes, with vscode-languageclient"
