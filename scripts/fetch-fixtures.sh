#!/usr/bin/env bash
# Extract real GitHub webhook payloads from the npm package
# @octokit/webhooks-examples (MIT) into crates/core/tests/fixtures/github/.
#
#   scripts/fetch-fixtures.sh            # uses the pinned version below
#   OCTOKIT_EXAMPLES_VERSION=7.7.0 scripts/fetch-fixtures.sh
#
# Needs node and npm. The package is installed into a temporary directory
# (nothing is added to the repository's own package files). Each example is
# written unmodified, pretty-printed, to <event>.<variant>.json. Files named
# *.derived.json are the one documented exception: the package has no merged
# pull request and no failed workflow run, so those two are made from a real
# example by changing only the fields listed in DERIVED below.
#
# After running it, review `git diff`, run the snapshot tests and read every
# changed summary before accepting snapshots.
set -euo pipefail

VERSION="${OCTOKIT_EXAMPLES_VERSION:-7.6.1}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/crates/core/tests/fixtures/github"

command -v node >/dev/null || { echo "fetch-fixtures: node is required" >&2; exit 1; }
command -v npm >/dev/null || { echo "fetch-fixtures: npm is required" >&2; exit 1; }

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

npm install --silent --no-audit --no-fund --ignore-scripts --prefix "$TMP" \
    "@octokit/webhooks-examples@$VERSION" >/dev/null
PKG="$TMP/node_modules/@octokit/webhooks-examples"

mkdir -p "$OUT"
rm -f "$OUT"/*.json

PKG="$PKG" OUT="$OUT" node <<'EOF'
const fs = require("fs");
const path = require("path");

const pkg = process.env.PKG;
const out = process.env.OUT;
const version = require(path.join(pkg, "package.json")).version;
const events = Object.fromEntries(
  require(path.join(pkg, "api.github.com/index.json")).map((e) => [e.name, e.examples]),
);

// [event, variant, predicate]: the first example of `event` matching the
// predicate is written to `<event>.<variant>.json`.
const a = (action) => (x) => x.action === action;
const PICK = [
  ["push", "branch-created", (x) => x.ref.startsWith("refs/heads/") && x.created && x.commits.length > 0],
  ["push", "tag-created", (x) => x.ref.startsWith("refs/tags/") && x.created],
  ["push", "tag-deleted", (x) => x.ref.startsWith("refs/tags/") && x.deleted],

  ["pull_request", "opened", a("opened")],
  ["pull_request", "closed", (x) => x.action === "closed" && !x.pull_request.merged],
  ["pull_request", "synchronize", a("synchronize")],
  ["pull_request", "review_requested", a("review_requested")],
  ["pull_request", "ready_for_review", a("ready_for_review")],
  ["pull_request", "converted_to_draft", a("converted_to_draft")],
  ["pull_request", "labeled", a("labeled")],
  ["pull_request", "assigned", a("assigned")],

  ["pull_request_review", "submitted", a("submitted")],
  ["pull_request_review", "dismissed", a("dismissed")],

  ["pull_request_review_comment", "created", a("created")],
  ["pull_request_review_comment", "edited", a("edited")],
  ["pull_request_review_comment", "deleted", a("deleted")],

  ["issues", "opened", a("opened")],
  ["issues", "edited", a("edited")],
  ["issues", "labeled", a("labeled")],
  ["issues", "assigned", a("assigned")],
  ["issues", "milestoned", a("milestoned")],
  ["issues", "transferred", a("transferred")],

  ["issue_comment", "created", a("created")],
  ["issue_comment", "edited", a("edited")],
  ["issue_comment", "deleted", a("deleted")],

  ["create", "tag", (x) => x.ref_type === "tag"],
  ["delete", "tag", (x) => x.ref_type === "tag"],

  ["release", "published", a("published")],
  ["release", "prereleased", a("prereleased")],
  ["release", "created", a("created")],
  ["release", "edited", a("edited")],
  ["release", "deleted", a("deleted")],

  ["workflow_run", "completed-success", (x) => x.action === "completed" && x.workflow_run.conclusion === "success"],
  ["workflow_run", "completed-queued", (x) => x.action === "completed" && x.workflow_run.status === "queued"],
  ["workflow_run", "requested", (x) => x.action === "requested" && x.workflow_run.status === "queued"],
  ["workflow_run", "requested-action_required", (x) => x.action === "requested" && x.workflow_run.conclusion === "action_required"],

  ["check_run", "created", a("created")],
  ["check_run", "completed-failure", (x) => x.action === "completed" && x.check_run.conclusion === "failure"],
  ["check_run", "completed-success", (x) => x.action === "completed" && x.check_run.conclusion === "success"],
  ["check_run", "requested_action", a("requested_action")],
  ["check_run", "rerequested", a("rerequested")],

  ["ping", "repository", (x) => x.hook && x.hook.type === "Repository"],
  ["ping", "organization", (x) => x.hook && x.hook.type === "Organization"],
];

// Variants the package lacks, made from a real example by changing only
// these fields. Keep this list short and say why each one exists.
const DERIVED = [
  // The package's closed pull requests are all unmerged; "merged" is the
  // summary and the state users care about most.
  ["pull_request", "closed-merged", (x) => x.action === "closed" && !x.pull_request.merged, (x) => {
    x.pull_request.merged = true;
    x.pull_request.merged_at = x.pull_request.closed_at;
    x.pull_request.merged_by = x.sender;
  }],
  // No failed workflow run in the package; failed CI is scored "high".
  ["workflow_run", "completed-failure", (x) => x.action === "completed" && x.workflow_run.conclusion === "success", (x) => {
    x.workflow_run.conclusion = "failure";
  }],
];

const write = (name, value) => {
  fs.writeFileSync(path.join(out, name), JSON.stringify(value, null, 2) + "\n");
  console.log(`  ${name}`);
};

console.log(`@octokit/webhooks-examples ${version} -> ${out}`);
let missing = 0;
for (const [event, variant, pred] of PICK) {
  const hit = (events[event] || []).find(pred);
  if (!hit) {
    console.error(`  MISSING ${event}.${variant}: no example matches`);
    missing++;
    continue;
  }
  write(`${event}.${variant}.json`, hit);
}
for (const [event, variant, pred, patch] of DERIVED) {
  const hit = (events[event] || []).find(pred);
  if (!hit) {
    console.error(`  MISSING base for ${event}.${variant}.derived`);
    missing++;
    continue;
  }
  const copy = JSON.parse(JSON.stringify(hit));
  patch(copy);
  write(`${event}.${variant}.derived.json`, copy);
}
fs.writeFileSync(path.join(out, "VERSION"), `@octokit/webhooks-examples ${version}\n`);
if (missing) process.exit(1);
EOF
