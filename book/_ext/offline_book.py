"""Sphinx extension for the truncflow book: keep every page free of scripts that need a network.

The book is read from disk, often with no network. Jupyter Book 1 always enables sphinx-thebe (live
kernels from a Binder server), which injects a configuration script that points to a CDN, and, on
some builds, injects it twice (a JavaScript error: "Identifier 'THEBE_JS_URL' has already been
declared"). truncflow's book has no live kernels, so this extension drops thebe's scripts and any
duplicate script entries from each page.
"""


def _clean_scripts(app, pagename, templatename, context, doctree):
    files = context.get("script_files")
    if not files:
        return
    keep, seen = [], set()
    for js in files:
        fname = str(getattr(js, "filename", js) or "")
        body = str(getattr(js, "attributes", {}).get("body", ""))
        if "thebe" in fname.lower() or "THEBE_JS_URL" in body:
            continue
        key = (fname, body)
        if key in seen:
            continue
        seen.add(key)
        keep.append(js)
    context["script_files"] = keep


def setup(app):
    app.connect("html-page-context", _clean_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
