"""Manual check that a page written by `rlx.report.render.render_html` really displays: a headless
Chromium screenshot of it, with the viewer's JavaScript served from local copies.

Not part of the test suite (CI installs no browser). Brax's page loads three.js, lil-gui, pako and
Brax's viewer.js from public CDNs; on a machine that cannot reach them this script fetches the
same versions once with ``npm pack`` (from the npm registry) into a cache directory, takes Brax's
own ``viewer.js`` from the installed brax package, rewrites the page's URLs to those copies,
serves them over a local HTTP server (module scripts do not load from ``file://``) and runs::

    chromium --headless --screenshot=PNG --window-size=800,600 http://127.0.0.1:PORT/page.html

Usage (needs ``chromium`` and ``npm``, e.g. ``apt-get install -y chromium npm``)::

    python -m rlx.bench.html_screenshot results/render/reacher_baseline.html /tmp/reacher.png
"""

from __future__ import annotations

import argparse
import functools
import http.server
import re
import shutil
import subprocess
import tarfile
import tempfile
import threading
from pathlib import Path

# What Brax 0.14.2's page (brax/visualizer/index.html) loads: URL prefix -> local path.
NPM_PACKAGES = {"three": "0.150.1", "lil-gui": "0.18.0", "pako": "2.1.0"}
URLS = {
    "https://unpkg.com/three@0.150.1/": "/three/",
    "https://cdn.jsdelivr.net/npm/lil-gui@0.18.0/+esm": "/lil-gui/dist/lil-gui.esm.js",
    "https://unpkg.com/pako@2.1.0/": "/pako/",
}
VIEWER_URL = re.compile(r"https://cdn\.jsdelivr\.net/gh/google/brax@[^\"']+/brax/visualizer/js/")
DEFAULT_CACHE = Path.home() / ".cache" / "rlx" / "viewer-js"


def fetch_packages(cache: Path) -> Path:
    """Unpacks the npm packages the page needs under `cache/<name>/` (once) and Brax's viewer
    JavaScript under `cache/brax-js/`; returns `cache`."""
    from brax.io import html

    cache.mkdir(parents=True, exist_ok=True)
    for name, version in NPM_PACKAGES.items():
        if (cache / name).is_dir():
            continue
        subprocess.run(["npm", "pack", f"{name}@{version}"], cwd=cache, check=True,
                       capture_output=True)  # fmt: skip
        tarball = cache / f"{name}-{version}.tgz"
        with tarfile.open(tarball) as tar:
            tar.extractall(cache / f".{name}", filter="data")
        (cache / f".{name}" / "package").rename(cache / name)
        tarball.unlink()
    viewer = Path(html.__file__).parents[1] / "visualizer" / "js"
    shutil.copytree(viewer, cache / "brax-js", dirs_exist_ok=True)
    return cache


def localise(page: str) -> str:
    """The page with every CDN URL of the viewer rewritten to the local copies."""
    for url, local in URLS.items():
        page = page.replace(url, local)
    return VIEWER_URL.sub("/brax-js/", page)


def screenshot(page: Path, png: Path, cache: Path = DEFAULT_CACHE, size: str = "800,600") -> Path:
    """Writes a headless-Chromium screenshot of `page` (served locally) to `png`."""
    root = fetch_packages(cache)
    name = f"page-{page.stem}.html"
    (root / name).write_text(localise(page.read_text()))
    handler = functools.partial(QuietHandler, directory=str(root))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/{name}"
        with tempfile.TemporaryDirectory() as profile:
            subprocess.run(
                [browser(), "--headless", "--no-sandbox", f"--user-data-dir={profile}",
                 "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
                 "--virtual-time-budget=20000", f"--window-size={size}",
                 f"--screenshot={png.resolve()}", url],
                check=True, capture_output=True, timeout=180,
            )  # fmt: skip
        server.shutdown()
    return png


def browser() -> str:
    """The Chromium executable on the PATH."""
    for name in ("chromium", "chromium-headless-shell", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    raise SystemExit("no chromium on the PATH (apt-get install -y chromium)")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files without logging each request."""

    def log_message(self, format: str, *args: object) -> None:
        """Silent."""


def main(argv: list[str] | None = None) -> None:
    """``python -m rlx.bench.html_screenshot PAGE.html OUT.png [--cache DIR] [--size W,H]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("page", type=Path)
    parser.add_argument("png", type=Path)
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--size", default="800,600", help="window WIDTH,HEIGHT in pixels")
    args = parser.parse_args(argv)
    print(screenshot(args.page, args.png, args.cache, args.size))


if __name__ == "__main__":
    main()
