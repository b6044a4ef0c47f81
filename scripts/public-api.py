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

Below each struct, enum, union and trait, its members are pinned too, with
their signatures: public fields, variants, the methods, constants and types
of its inherent impls (or of the trait), and the traits it implements (auto
traits included, blanket impls left out). A changed parameter, a field
renamed, a lost `Clone` or `Send` each show as a changed line.
Needs only python3 and cargo.
"""

import argparse
import difflib
import json
import os
import subprocess
import sys

CRATES = [
    "ibiki-core", "ibiki-memory", "ibiki-postgres", "ibiki-providers", "ibiki-http", "ibiki-forward",
]
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


# Auto traits worth pinning; the others are compiler internals.
AUTO_TRAITS = {"Send", "Sync", "Unpin", "UnwindSafe", "RefUnwindSafe"}
# Impls that derives add for the compiler's own use.
INTERNAL_TRAITS = {"StructuralPartialEq", "TrivialClone"}


def render_args(args):
    if not args:
        return ""
    if "angle_bracketed" in args:
        parts = []
        for arg in args["angle_bracketed"]["args"]:
            if "type" in arg:
                parts.append(render(arg["type"]))
            elif "lifetime" in arg:
                parts.append(arg["lifetime"])
            elif "const" in arg:
                parts.append(arg["const"].get("expr", "_"))
            else:
                parts.append("_")
        for constraint in args["angle_bracketed"].get("constraints", []):
            binding = constraint.get("binding", {})
            if "equality" in binding and "type" in binding["equality"]:
                parts.append(f"{constraint['name']} = {render(binding['equality']['type'])}")
            else:
                parts.append(constraint["name"])
        return f"<{', '.join(parts)}>" if parts else ""
    if "parenthesized" in args:
        p = args["parenthesized"]
        out = f" -> {render(p['output'])}" if p.get("output") else ""
        return f"({', '.join(render(t) for t in p['inputs'])}){out}"
    return ""


def render_bound(bound):
    if "trait_bound" in bound:
        trait = bound["trait_bound"]["trait"]
        return trait["path"] + render_args(trait.get("args"))
    if "outlives" in bound:
        return bound["outlives"]
    return "?"


def render(ty):
    """A type of rustdoc's JSON, written as in source (paths as the crate names them)."""
    if ty is None:
        return "()"
    (kind, value), = ty.items()
    if kind == "resolved_path":
        return value["path"] + render_args(value.get("args"))
    if kind in ("generic", "primitive"):
        return value
    if kind == "borrowed_ref":
        lifetime = f"{value['lifetime']} " if value.get("lifetime") else ""
        mutable = "mut " if value["is_mutable"] else ""
        return f"&{lifetime}{mutable}{render(value['type'])}"
    if kind == "raw_pointer":
        return f"*{'mut' if value['is_mutable'] else 'const'} {render(value['type'])}"
    if kind == "tuple":
        return f"({', '.join(render(t) for t in value)})"
    if kind == "slice":
        return f"[{render(value)}]"
    if kind == "array":
        return f"[{render(value['type'])}; {value['len']}]"
    if kind == "impl_trait":
        return "impl " + " + ".join(render_bound(b) for b in value)
    if kind == "dyn_trait":
        traits = [t["trait"]["path"] + render_args(t["trait"].get("args")) for t in value["traits"]]
        if value.get("lifetime"):
            traits.append(value["lifetime"])
        return "dyn " + " + ".join(traits)
    if kind == "qualified_path":
        trait = value.get("trait")
        self_type = render(value["self_type"])
        base = f"<{self_type} as {trait['path']}>" if trait else self_type
        return f"{base}::{value['name']}"
    if kind == "function_pointer":
        sig = value["sig"]
        out = f" -> {render(sig['output'])}" if sig.get("output") else ""
        return f"fn({', '.join(render(t) for _, t in sig['inputs'])}){out}"
    return json.dumps(ty, sort_keys=True)


def render_generics(generics):
    params = []
    for param in generics.get("params", []):
        kind = param["kind"]
        if "lifetime" in kind:
            params.append(param["name"])
        elif "type" in kind:
            bounds = kind["type"].get("bounds", [])
            if kind["type"].get("is_synthetic"):
                continue
            suffix = f": {' + '.join(render_bound(b) for b in bounds)}" if bounds else ""
            params.append(param["name"] + suffix)
        elif "const" in kind:
            params.append(f"const {param['name']}: {render(kind['const']['type'])}")
    return f"<{', '.join(params)}>" if params else ""


def render_input(arg, ty):
    if arg != "self":
        return f"{arg}: {render(ty)}"
    if ty == {"generic": "Self"}:
        return "self"
    ref = ty.get("borrowed_ref")
    if ref is not None and ref["type"] == {"generic": "Self"}:
        return f"&{ref['lifetime'] + ' ' if ref.get('lifetime') else ''}{'mut ' if ref['is_mutable'] else ''}self"
    return f"self: {render(ty)}"


def render_fn(name, function):
    header = function["header"]
    prefix = "".join(
        word for word, on in [
            ("const ", header["is_const"]),
            ("async ", header["is_async"]),
            ("unsafe ", header["is_unsafe"]),
        ] if on
    )
    sig = function["sig"]
    inputs = [render_input(arg, ty) for arg, ty in sig["inputs"]]
    output = f" -> {render(sig['output'])}" if sig.get("output") else ""
    return f"{prefix}fn {name}{render_generics(function['generics'])}({', '.join(inputs)}){output}"


def render_member(item):
    kind, inner = next(iter(item["inner"].items()))
    name = item["name"]
    if kind == "function":
        return render_fn(name, inner)
    if kind == "assoc_const":
        return f"const {name}: {render(inner['type'])}"
    if kind == "assoc_type":
        return f"type {name}" + (f" = {render(inner['type'])}" if inner.get("type") else "")
    if kind == "constant":
        return f"const {name}: {render(inner['type'])}"
    if kind == "type_alias":
        return f"type {name} = {render(inner['type'])}"
    return f"{kind} {name}"


def members(doc, item):
    """Signature lines of a struct's, enum's, union's or trait's members."""
    index = doc["index"]
    kind, inner = next(iter(item["inner"].items()))
    lines = []
    if kind == "struct":
        shape = inner["kind"]
        if "plain" in shape:
            field_ids = shape["plain"]["fields"]
        elif "tuple" in shape:
            field_ids = [f for f in shape["tuple"] if f is not None]
        else:
            field_ids = []
        for field_id in field_ids:
            field = index[str(field_id)]
            if field["visibility"] == "public":
                lines.append(f"field {field['name']}: {render(field['inner']['struct_field'])}")
    if kind == "enum":
        for variant_id in inner["variants"]:
            variant = index[str(variant_id)]
            shape = variant["inner"]["variant"]["kind"]
            if shape == "plain":
                fields = ""
            elif "tuple" in shape:
                fields = "(" + ", ".join(
                    render(index[str(f)]["inner"]["struct_field"]) for f in shape["tuple"] if f is not None
                ) + ")"
            else:
                fields = " { " + ", ".join(
                    f"{index[str(f)]['name']}: {render(index[str(f)]['inner']['struct_field'])}"
                    for f in shape["struct"]["fields"]
                ) + " }"
            lines.append(f"variant {variant['name']}{fields}")
    if kind == "trait":
        for member_id in inner["items"]:
            lines.append("trait item " + render_member(index[str(member_id)]))
    for impl_id in inner.get("impls", []):
        impl = index[str(impl_id)]["inner"]["impl"]
        if impl["blanket_impl"] is not None:
            continue
        trait = impl.get("trait")
        if trait is None:
            for member_id in impl["items"]:
                member = index[str(member_id)]
                if member["visibility"] == "public":
                    hidden = " (hidden)" if is_hidden(member) else ""
                    lines.append(render_member(member) + hidden)
        elif trait["path"] in INTERNAL_TRAITS:
            continue
        elif not impl["is_synthetic"] or trait["path"] in AUTO_TRAITS:
            negative = "!" if impl.get("is_negative") else ""
            lines.append(f"impl {negative}{trait['path']}{render_args(trait.get('args'))}")
    return lines


def listing(crate):
    doc = rustdoc_json(crate)
    items = public_items(doc)
    paths_of = {}
    for path, _, _, item_id in items:
        paths_of.setdefault(item_id, []).append("::".join(path))
    twice = sorted(sorted(paths) for paths in paths_of.values() if len(paths) > 1)
    lines = []
    for path, kind, hidden, item_id in items:
        name = "::".join(path)
        lines.append(f"{kind} {name}{' (hidden)' if hidden else ''}")
        item = doc["index"].get(str(item_id))
        if item is not None and kind in ("struct", "enum", "union", "trait"):
            lines.extend(f"{name}: {member}" for member in members(doc, item))
    return sorted(set(lines)), twice


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
