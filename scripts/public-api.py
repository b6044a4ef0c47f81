#!/usr/bin/env python3
"""Pins the public API of the library crates.

For each crate, builds rustdoc's JSON (`RUSTC_BOOTSTRAP=1 cargo rustdoc
--all-features -- -Z unstable-options --output-format json
--document-hidden-items`), lists every public item by the path a user writes
(`ibiki_core::PhoneNumber`, `ibiki_http::provider::Twilio`), and compares the
list with `<crate>/public-api.txt`:

    scripts/public-api.py                 # check every library crate
    scripts/public-api.py ibiki-core      # check one
    scripts/public-api.py --bless         # rewrite the listings

It fails when the listing differs (an item added, removed or moved), and when
one item can be named by two public paths. Items hidden from the docs
(`#[doc(hidden)]`: fuzzing and test helpers) are listed too, marked `hidden`.
Needs only python3 and cargo.
"""

import argparse
import difflib
import json
import os
import subprocess
import sys

CRATES = ["ibiki-core", "ibiki-memory", "ibiki-postgres", "ibiki-http"]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# rustdoc's item kinds, as a reader calls them.
KINDS = {
    "type_alias": "type",
    "constant": "const",
    "function": "fn",
    "module": "mod",
    "proc_macro": "macro",
}


def target_dir():
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)["target_directory"]


def rustdoc_json(crate):
    env = dict(os.environ, RUSTC_BOOTSTRAP="1")
    subprocess.run(
        [
            "cargo", "rustdoc", "--quiet", "-p", crate, "--all-features", "--",
            "-Z", "unstable-options", "--output-format", "json",
            "--document-hidden-items",
        ],
        cwd=ROOT,
        check=True,
        env=env,
    )
    path = os.path.join(target_dir(), "doc", crate.replace("-", "_") + ".json")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def is_hidden(item):
    return item is not None and any(
        "hidden" in json.dumps(attr) for attr in item.get("attrs", [])
    )


def kind_of(doc, item_id):
    item = doc["index"].get(str(item_id))
    if item is not None:
        kind = next(iter(item["inner"]))
    else:
        kind = doc["paths"].get(str(item_id), {}).get("kind", "item")
    return KINDS.get(kind, kind)


def public_items(doc):
    """(path, kind, hidden, id) for every public item, walking modules."""
    index = doc["index"]
    found = []

    def walk(module, path, hidden):
        for item_id in module["inner"]["module"]["items"]:
            item = index[str(item_id)]
            if item["visibility"] != "public":
                continue
            kind = next(iter(item["inner"]))
            if kind == "impl":
                continue
            item_hidden = hidden or is_hidden(item)
            if kind == "use":
                use = item["inner"]["use"]
                target = index.get(str(use["id"])) if use["id"] is not None else None
                if use["is_glob"]:
                    if target is not None and "module" in target["inner"]:
                        walk(target, path, item_hidden or is_hidden(target))
                    continue
                name, target_id = use["name"], use["id"]
                item_hidden = item_hidden or is_hidden(target)
                if target is not None and "module" in target["inner"]:
                    found.append((path + [name], "mod", item_hidden, target_id))
                    walk(target, path + [name], item_hidden)
                    continue
                found.append((path + [name], kind_of(doc, target_id), item_hidden, target_id))
            elif kind == "module":
                found.append((path + [item["name"]], "mod", item_hidden, item["id"]))
                walk(item, path + [item["name"]], item_hidden)
            else:
                found.append((path + [item["name"]], kind_of(doc, item["id"]), item_hidden, item["id"]))

    root = index[str(doc["root"])]
    walk(root, [root["name"]], False)
    return found


def listing(crate):
    items = public_items(rustdoc_json(crate))
    paths_of = {}
    for path, _, _, item_id in items:
        paths_of.setdefault(item_id, []).append("::".join(path))
    twice = sorted(sorted(paths) for paths in paths_of.values() if len(paths) > 1)
    lines = sorted(
        f"{kind} {'::'.join(path)}{' (hidden)' if hidden else ''}"
        for path, kind, hidden, _ in items
    )
    return lines, twice


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("crates", nargs="*", default=CRATES)
    parser.add_argument("--bless", action="store_true", help="rewrite public-api.txt")
    args = parser.parse_args()
    failed = False
    for crate in args.crates:
        lines, twice = listing(crate)
        for paths in twice:
            print(f"{crate}: one item, two public paths: {', '.join(paths)}", file=sys.stderr)
            failed = True
        pinned_path = os.path.join(ROOT, crate, "public-api.txt")
        text = "".join(line + "\n" for line in lines)
        if args.bless:
            with open(pinned_path, "w", encoding="utf-8") as f:
                f.write(text)
            print(f"{crate}: {len(lines)} items written to {crate}/public-api.txt")
            continue
        try:
            with open(pinned_path, encoding="utf-8") as f:
                pinned = f.read()
        except FileNotFoundError:
            pinned = ""
        if pinned != text:
            failed = True
            sys.stderr.writelines(
                difflib.unified_diff(
                    pinned.splitlines(keepends=True),
                    text.splitlines(keepends=True),
                    f"{crate}/public-api.txt (pinned)",
                    f"{crate} (built)",
                )
            )
            print(
                f"{crate}: the public API differs from {crate}/public-api.txt; if the "
                "change is intended, run scripts/public-api.py --bless and commit the file",
                file=sys.stderr,
            )
        else:
            print(f"{crate}: public API as pinned ({len(lines)} items)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
