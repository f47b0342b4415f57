"""Open every page of the built book in headless Chromium and check what a reader would see.

    python scripts/check_book.py _build/html [--screenshots DIR] [--toc _toc.yml]

For each page listed in ``_toc.yml`` (the chapters and the references page) it asserts that

1. the page carries its title: the first ``# `` heading of the source notebook or markdown file
   is the page's ``<h1>`` and starts the browser tab's title;
2. every ``<img>`` has loaded (``naturalWidth > 0``), lazy images included;
3. the console shows no errors: ``console.error``/``console.assert`` calls, uncaught
   exceptions and browser log entries of level error;
4. math has rendered: once MathJax has finished, the page's visible text (code blocks aside)
   holds no raw TeX delimiters ``\\(``, ``\\)``, ``\\[``, ``\\]`` or ``$$``;
5. no script comes from another host: the book serves its own JavaScript (MathJax included,
   from ``_static/mathjax``), so it works offline and leaks no page views to a CDN.

A failed load of an *image* outside localhost (the Colab badge) is printed but not fatal,
because CI is offline and such images load for real readers; everything served from the book
itself must load.

With ``--screenshots DIR`` it saves a full-page PNG per page, for people to look at.

The browser is driven through the Chrome DevTools Protocol over ``--remote-debugging-pipe``
(NUL-separated JSON on file descriptors 3 and 4), so the check needs no package beyond the
standard library, PyYAML (installed with Jupyter Book) and Debian's ``chromium``.
"""
from __future__ import annotations

import argparse
import base64
import functools
import http.server
import json
import os
import re
import select
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_FLAGS = (  # what headless Chromium needs as root, offline, in a container
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)
VIEWPORT = {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}
MAX_SCREENSHOT_HEIGHT = 12000  # px; longer pages are cut, not squeezed
PAGE_TIMEOUT_S = 60.0
IMAGE_TIMEOUT_MS = 15000
MATH_TIMEOUT_MS = 15000
# TeX that MathJax left unrendered: \( \) \[ \] or $$ in the text a reader sees.
RAW_TEX = re.compile(r"\\[()\[\]]|\$\$")

PAGE_STATE_JS = """
(async () => {
  const images = [...document.images];
  images.forEach((img) => { if (img.loading === 'lazy') img.loading = 'eager'; });
  const settled = images.map((img) => img.complete ? null
      : new Promise((done) => { img.addEventListener('load', done); img.addEventListener('error', done); }));
  await Promise.race([Promise.all(settled), new Promise((done) => setTimeout(done, %d))]);
  const h1 = [...document.querySelectorAll('article h1')]  // the page body, not print-only copies
      .map((h) => h.textContent.replace(/[#\\u00b6]/g, '').trim());
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await Promise.race([MathJax.startup.promise, new Promise((done) => setTimeout(done, %d))]);
  }
  const body = (document.querySelector('article') || document.body).cloneNode(true);
  body.querySelectorAll('pre, code, script, style, mjx-container, .highlight')
      .forEach((node) => node.remove());
  return JSON.stringify({
    title: document.title,
    h1: h1,
    text: body.textContent,
    mathjax: Boolean(window.MathJax && MathJax.version),
    scripts: [...document.scripts].map((s) => s.src).filter((src) => src),
    images: images.map((img) => ({src: img.currentSrc || img.src, width: img.naturalWidth,
                                  complete: img.complete})),
  });
})()
""" % (IMAGE_TIMEOUT_MS, MATH_TIMEOUT_MS)


class CDP:
    """A minimal Chrome DevTools Protocol client over Chromium's debugging pipe."""

    def __init__(self, chromium: str, profile_dir: str, log_path: Path) -> None:
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        null_fd = os.open(os.devnull, os.O_RDWR)
        args = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}", "about:blank"]
        self.pid = os.posix_spawn(
            chromium,
            args,
            os.environ,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, null_fd, 0),
                (os.POSIX_SPAWN_DUP2, log_fd, 1),
                (os.POSIX_SPAWN_DUP2, log_fd, 2),
                (os.POSIX_SPAWN_DUP2, to_browser_r, 3),  # Chromium reads commands from fd 3
                (os.POSIX_SPAWN_DUP2, from_browser_w, 4),  # and writes replies to fd 4
            ],
            setsid=True,  # its own process group, so closing it ends its helpers too
        )
        for fd in (to_browser_r, from_browser_w, log_fd, null_fd):
            os.close(fd)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []

    def close(self) -> None:
        """End the browser and the helper processes it started."""
        try:
            os.killpg(self.pid, signal.SIGTERM)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and os.waitpid(self.pid, os.WNOHANG) == (0, 0):
                time.sleep(0.1)
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, ChildProcessError):
            pass
        for fd in (self._to_browser, self._from_browser):
            os.close(fd)

    def _read_message(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._from_browser], [], [], left)[0]:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the debugging pipe (see its log)")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, session: str | None = None,
             timeout: float = PAGE_TIMEOUT_S) -> dict[str, Any]:
        """Send one command and return its result; events that arrive meanwhile are kept."""
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read_message(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method} failed: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_event(self, method: str, session: str, timeout: float = PAGE_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == method and e.get("sessionId") == session
                      for e in self.events):
            self.events.append(self._read_message(deadline))


def _is_local(url: str) -> bool:
    host = urlparse(url).hostname
    return not url or url.startswith(("data:", "blob:", "about:")) or host in (
        "127.0.0.1", "localhost", "::1")


def raw_tex(text: str, context: int = 40) -> list[str]:
    """Excerpts of ``text`` around each raw TeX delimiter (at most five)."""
    found = []
    for match in list(RAW_TEX.finditer(text))[:5]:
        start, end = max(0, match.start() - context), match.end() + context
        found.append(" ".join(text[start:end].split()))
    return found


def external_scripts(events: list[dict[str, Any]], session: str, srcs: list[str]) -> list[str]:
    """Scripts the page loaded (or tried to) from a host other than the book's own server."""
    urls = [e["params"]["request"]["url"] for e in events
            if e.get("sessionId") == session and e.get("method") == "Network.requestWillBeSent"
            and e["params"].get("type") == "Script"]
    return sorted({url for url in [*srcs, *urls] if not _is_local(url)})


def console_problems(events: list[dict[str, Any]], session: str) -> tuple[list[str], list[str]]:
    """(errors, ignored external failures) from one page's DevTools events."""
    errors, ignored = [], []
    for event in events:
        if event.get("sessionId") != session:
            continue
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            text = " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"])
            errors.append(f"console.{params['type']}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            errors.append(f"uncaught exception: {text} ({details.get('url', '')})")
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            entry = params["entry"]
            line = f"{entry['source']}: {entry['text']} ({entry.get('url', '')})"
            (errors if _is_local(entry.get("url", "")) else ignored).append(line)
    return errors, ignored


def _plain(text: str) -> str:
    """Text without inline markdown marks, so "# The `PRN` model" matches its rendering."""
    return " ".join(text.translate(str.maketrans("", "", "`*_$")).split())


def expected_title(source: Path) -> str | None:
    """The first level-1 heading of a chapter's notebook or markdown source."""
    if source.suffix == ".ipynb":
        cells = json.loads(source.read_text(encoding="utf-8"))["cells"]
        lines = [line for c in cells if c["cell_type"] == "markdown"
                 for line in "".join(c["source"]).splitlines()]
    else:
        lines = source.read_text(encoding="utf-8").splitlines()
    return next((line[2:].strip() for line in lines if line.startswith("# ")), None)


def toc_pages(toc_path: Path) -> list[str]:
    """Every file named in a jb-book ``_toc.yml``, root first, in reading order."""
    toc = yaml.safe_load(toc_path.read_text(encoding="utf-8"))
    pages = [toc["root"]]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "file" in node:
                pages.append(node["file"])
            for key in ("parts", "chapters", "sections"):
                walk(node.get(key, []))
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc)
    return pages


def serve(directory: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve the built book on a free localhost port in a background thread."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            if not isinstance(sys.exc_info()[1], ConnectionError):  # a tab closed mid-transfer
                super().handle_error(request, client_address)

    server = Server(("127.0.0.1", 0), functools.partial(Quiet, directory=str(directory)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def check_page(cdp: CDP, url: str, title: str | None, shot: Path | None) -> tuple[list[str], list[str]]:
    """Load one page in a fresh tab; return (failures, ignored external failures)."""
    target = cdp.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = cdp.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    try:
        for domain in ("Page", "Runtime", "Log", "Network"):
            cdp.call(f"{domain}.enable", session=session)
        cdp.call("Emulation.setDeviceMetricsOverride", VIEWPORT, session=session)
        navigation = cdp.call("Page.navigate", {"url": url}, session=session)
        if navigation.get("errorText"):
            return [f"could not load: {navigation['errorText']}"], []
        cdp.wait_event("Page.loadEventFired", session)
        state = json.loads(cdp.call("Runtime.evaluate", {
            "expression": PAGE_STATE_JS, "awaitPromise": True, "returnByValue": True,
        }, session=session)["result"]["value"])
        failures = []
        if title is None:
            if not any(state["h1"]):
                failures.append("the page has no <h1> title")
        elif _plain(title) not in map(_plain, state["h1"]) or not _plain(
                state["title"]).startswith(_plain(title)):
            failures.append(f"title {title!r} missing: <h1> {state['h1']}, tab {state['title']!r}")
        for excerpt in raw_tex(state["text"]):
            failures.append(f"raw TeX left in the rendered text: ...{excerpt}...")
        for url in external_scripts(cdp.events, session, state["scripts"]):
            failures.append(f"script from another host: {url[:120]}")
        ignored = []
        for img in state["images"]:
            if img["width"] == 0:
                line = f"image did not load: {img['src'][:120]}"
                (failures if _is_local(img["src"]) else ignored).append(line)
        if shot is not None:
            size = cdp.call("Page.getLayoutMetrics", session=session)["cssContentSize"]
            clip = {"x": 0, "y": 0, "width": VIEWPORT["width"],
                    "height": min(size["height"], MAX_SCREENSHOT_HEIGHT), "scale": 1}
            png = cdp.call("Page.captureScreenshot", {
                "format": "png", "clip": clip, "captureBeyondViewport": True,
            }, session=session)["data"]
            shot.write_bytes(base64.b64decode(png))
        errors, external = console_problems(cdp.events, session)
        return failures + errors, ignored + external
    finally:
        cdp.call("Target.closeTarget", {"targetId": target})
        cdp.events = [e for e in cdp.events if e.get("sessionId") != session]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path, help="the built book, e.g. _build/html")
    parser.add_argument("--toc", type=Path, default=REPO / "_toc.yml")
    parser.add_argument("--screenshots", type=Path, help="save one full-page PNG per page here")
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args(argv)
    if not (args.html / "index.html").is_file():
        parser.error(f"{args.html} has no index.html; build the book first (bash scripts/book.sh)")
    if not Path(args.chromium).is_file():
        parser.error(f"no Chromium at {args.chromium}; install it with: apt-get install -y chromium")
    if args.screenshots:
        args.screenshots.mkdir(parents=True, exist_ok=True)

    pages = toc_pages(args.toc)
    root = args.toc.resolve().parent  # the book's sources sit next to its _toc.yml
    server, base = serve(args.html)
    failed = 0
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="prn-chromium-") as profile:
        cdp = CDP(args.chromium, profile, Path(profile) / "chromium.log")
        try:
            for page in pages:
                source = next((p for p in (root / f"{page}.ipynb", root / f"{page}.md")
                               if p.is_file()), None)
                title = expected_title(source) if source else None
                shot = args.screenshots / f"{Path(page).name}.png" if args.screenshots else None
                if not (args.html / f"{page}.html").is_file():
                    problems, ignored = [f"{page}.html was not built"], []
                else:
                    problems, ignored = check_page(cdp, f"{base}/{page}.html", title, shot)
                status = "FAIL" if problems else "ok"
                print(f"[{status:4}] {page}.html" + (f"  ({title})" if title else ""))
                for line in problems:
                    print(f"         - {line}")
                for line in ignored:
                    print(f"         ~ ignored, external and offline: {line}")
                failed += bool(problems)
        except Exception:
            log = Path(profile) / "chromium.log"
            if log.is_file():
                sys.stderr.write("Chromium log (last lines):\n" + log.read_text()[-3000:])
            raise
        finally:
            cdp.close()
            server.shutdown()
    elapsed = time.monotonic() - start
    print(f"{len(pages) - failed} of {len(pages)} pages passed the browser check in {elapsed:.1f} s"
          + (f"; screenshots in {args.screenshots}" if args.screenshots else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
