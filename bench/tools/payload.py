#!/usr/bin/env python3
"""Build a realistic signed GitHub push body of an exact size.

    payload.py BYTES OUT_FILE SECRET   -> prints "sha256=<hex>" (X-Hub-Signature-256)

Starts from the real push payload committed under
crates/core/tests/fixtures/github/push.branch-created.json (octokit's
webhooks examples), minified as GitHub sends it, then:

* if it is larger than BYTES, trims the repository/owner/sender objects to
  fewer fields (GitHub always sends the full objects, so small bodies are
  necessarily a bit synthetic: the issue's 1.2 KB push is one of them);
* pads with commits whose messages are plain English text, up to 20 commits
  (GitHub's limit per push payload), with head_commit = the last commit,
  and adjusts one message so the body is exactly BYTES long.

Only the Python standard library is used.
"""

import hashlib
import hmac
import json
import os
import random
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURE = os.path.join(ROOT, "crates/core/tests/fixtures/github/push.branch-created.json")

WORDS = (
    "fix add remove update refactor retry queue webhook handler timeout parser "
    "signature verify cache index query page cursor limit search token header "
    "release deploy config default test flaky race close stream client server "
    "error message log metric batch commit writer reader history event source "
    "payload summary importance rule glob filter migrate schema table column "
    "the a of to in for on with when and so that it is not"
).split()


def dumps(v):
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)


def text(rng, n):
    """Exactly n ASCII characters of sentence-like text (no JSON escapes)."""
    out = []
    size = 0
    while size < n:
        sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14)))
        sentence = sentence[0].upper() + sentence[1:] + ". "
        out.append(sentence)
        size += len(sentence)
    return "".join(out)[:n].rstrip() .ljust(n, ".")


KEEP_USER = ("login", "id", "node_id", "html_url", "type", "site_admin", "name", "email")
KEEP_REPO = ("id", "node_id", "name", "full_name", "private", "owner", "html_url",
             "description", "fork", "url", "created_at", "updated_at", "pushed_at",
             "default_branch", "master_branch")


def trimmed(base, level):
    d = json.loads(dumps(base))
    if level >= 1:
        # Drop the URL-template fields (…_url) but html_url/url.
        def strip_urls(o):
            return {k: v for k, v in o.items() if not (k.endswith("_url") and k != "html_url")}
        d["repository"] = strip_urls(d["repository"])
        d["repository"]["owner"] = strip_urls(d["repository"]["owner"])
        d["sender"] = strip_urls(d["sender"])
    if level >= 2:
        d["repository"] = {k: v for k, v in d["repository"].items() if k in KEEP_REPO}
        d["repository"]["owner"] = {k: v for k, v in d["repository"]["owner"].items() if k in KEEP_USER}
        d["sender"] = {k: v for k, v in d["sender"].items() if k in KEEP_USER}
    if level >= 3:  # (levels 4 and 5 also slim the commits: see build)
        d["repository"] = {k: d["repository"][k] for k in ("id", "name", "full_name", "private", "owner", "html_url")}
        d["repository"]["owner"] = {k: d["repository"]["owner"][k] for k in ("login", "id")}
        d["sender"] = {k: d["sender"][k] for k in ("login", "id", "type")}
        d.pop("installation", None)
    return d


def slim_commit(c, level):
    if level >= 4:
        c = {k: c[k] for k in ("id", "distinct", "message", "timestamp", "url", "author",
                                "added", "removed", "modified")}
    if level >= 5:
        c.pop("url")
        c["author"] = {"username": c["author"]["username"]}
    return c


def build(base_commit, d, n_commits, pad_each, first_pad, rng_seed, level=0):
    rng = random.Random(rng_seed)
    commits = []
    for i in range(n_commits):
        c = slim_commit(json.loads(dumps(base_commit)), level)
        sha = hashlib.sha1(f"{rng_seed}-{i}".encode()).hexdigest()
        c["id"] = sha
        if "url" in c:
            c["url"] = c["url"].rsplit("/", 1)[0] + "/" + sha
        if "tree_id" in c:
            c["tree_id"] = hashlib.sha1(f"tree-{rng_seed}-{i}".encode()).hexdigest()
        c["added"] = []
        c["modified"] = [f"src/module_{i % 7}.rs"] + (["README.md"] if level < 5 else [])
        c["message"] = text(rng, first_pad if i == 0 else pad_each)
        commits.append(c)
    out = dict(d)
    out["before"] = "6113728f27ae82c7b1a177c8d03f9e96e0adf246"
    out["created"] = False
    out["after"] = commits[-1]["id"]
    out["compare"] = out["compare"].rsplit("/", 1)[0] + f"/6113728f27ae...{commits[-1]['id'][:12]}"
    if level >= 5:
        out["pusher"] = {"name": out["pusher"]["name"]}
    out["commits"] = commits
    out["head_commit"] = commits[-1]
    return dumps(out).encode()


def make(target):
    base = json.load(open(FIXTURE, encoding="utf-8"))
    base_commit = base["commits"][0]
    n_commits = max(1, min(20, target // 2048))
    for level in range(6):
        d = trimmed(base, min(level, 3))
        # Each padded message char is one byte; with one commit, commit 0 is
        # also head_commit so its padding counts twice.
        weight0 = 2 if n_commits == 1 else 1
        zero = len(build(base_commit, d, n_commits, 1, 1, 1, level))
        room = target - zero
        if room < 0:
            continue
        pad_each = max(1, room // (n_commits + 1)) if n_commits > 1 else 1
        body = build(base_commit, d, n_commits, pad_each, 1, 1, level)
        first = 1 + (target - len(body)) // weight0
        for _ in range(5):
            body = build(base_commit, d, n_commits, pad_each, max(1, first), 1, level)
            diff = target - len(body)
            if diff == 0:
                return body, level, n_commits
            if abs(diff) < weight0:  # odd remainder with a duplicated commit
                break
            first += diff // weight0
        if len(body) < target:
            # One byte left over (the padded commit is also head_commit, so
            # padding moves in steps of two): push to a branch whose name
            # is one character longer.
            obj = json.loads(body)
            obj["ref"] = obj["ref"].replace("refs/heads/master", "refs/heads/develop")
            body = dumps(obj).encode()
            if len(body) == target:
                return body, level, n_commits
    sys.exit(f"payload.py: cannot build a push body of exactly {target} bytes")


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    target, out, secret = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    body, level, n = make(target)
    json.loads(body)  # still valid JSON
    with open(out, "wb") as f:
        f.write(body)
    sig = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    print(f"sha256={sig}")
    print(f"payload.py: {len(body)} bytes, {n} commit(s), trim level {level}", file=sys.stderr)


if __name__ == "__main__":
    main()
