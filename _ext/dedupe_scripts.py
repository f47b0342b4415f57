"""Sphinx extension: emit each ``<script>`` of a page once.

Why: Sphinx 7.4 (the last series Jupyter Book 1.x supports) registers an inline script added
after the builder starts (``app.add_js_file(None, body=...)``, as sphinx-thebe does) twice, once
with ``filename=None`` and once with ``filename=''``, so its equality check misses the
duplicate. sphinx-thebe's inline script declares ``const THEBE_JS_URL``; run twice, it throws
"Identifier 'THEBE_JS_URL' has already been declared" on every page, which the browser check
(scripts/check_book.py) rightly reports. The same bug lists a page's MathJax twice, once with
``defer`` and once without; loaded twice, MathJax 3 throws "Cannot set property Package of
#<Object> which has only a getter". So a script file is kept once whatever its attributes (the
first, deferred, copy wins). Sphinx 8 fixed the registration; remove this extension
when the book moves to Jupyter Book 2 or a Sphinx that has the fix.
"""
from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx

__all__ = ["setup"]


def _drop_duplicate_scripts(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        if script.filename:  # a file: once per page, whatever its attributes
            key = ("file", script.filename)
        else:  # an inline script: once per body and attributes
            key = ("", script.priority, tuple(sorted(script.attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique  # in place: Sphinx restores this list after each page


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("html-page-context", _drop_duplicate_scripts, priority=900)  # after the others
    return {"parallel_read_safe": True, "parallel_write_safe": True}
