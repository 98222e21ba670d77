"""Peak memory of the app's server with full MNIST loaded and five trained runs open in the views.

Trains five runs on full MNIST through the command line (one epoch each: what is measured is the server, not the
training), starts ``streamlit run app.py`` on them, and drives headless Chromium (Playwright) through every view of
each run: Reconstructions, Filters, Latent space (PCA of the 10,000 test codes), Denoising, Generate (side by side
and levers). It reads the server's resident memory after each page and its high-water mark (``VmHWM``) at the end,
and prints JSON lines. Linux only (``/proc``).

    AECORE_DATA_DIR=../shared/data python bench/memory.py [--chromium /usr/bin/chromium]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from browser import Server  # bench/ is on the path when a bench script runs

ROOT = Path(__file__).resolve().parents[1]
RUNS = [("stacked", []), ("vae", []), ("k-sparse", []),
        ("denoising", []), ("gan", ["--epochs", "1"])]
VIEWS = ["reconstructions?order=worst+first", "filters", "latent", "denoising", "generate?view=Side+by+side",
         "generate?view=Levers"]


def _status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of ``pid`` in MB."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0]) // 1024
    return out


def _train(model: str, extra: list[str], env: dict) -> str:
    args = [sys.executable, "-m", "aecore", "train", model, "--dataset", "mnist", "--epochs", "1", *extra]
    out = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    if not os.environ.get("AECORE_DATA_DIR"):
        sys.exit("set AECORE_DATA_DIR to a folder with mnist/ (../shared/data)")
    home = Path(tempfile.mkdtemp(prefix="aecore-memory-"))
    env = {**os.environ, "AECORE_RUNS_DIR": str(home / "runs"), "AECORE_CACHE_DIR": str(home / "cache")}
    start = time.perf_counter()
    runs = [_train(model, extra, env) for model, extra in RUNS]
    print(json.dumps({"trained": runs, "seconds": round(time.perf_counter() - start, 1)}), flush=True)

    server = Server(home)  # bench/browser.py's: a free port, this run store
    url = server.url
    try:
        server.wait_healthy()
        print(json.dumps({"phase": "started", **_status(server.proc.pid)}), flush=True)
        from playwright.sync_api import sync_playwright
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=args.chromium, args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            for run in runs:
                for view in VIEWS:
                    sep = "&" if "?" in view else "?"
                    page.goto(f"{url}/{view}{sep}dataset=mnist&run={run}")
                    page.wait_for_selector("h1", timeout=120_000)
                    quiet = 0
                    while quiet < 8:  # the page and its background work (projections, classifier) settle
                        quiet = quiet + 1 if page.locator("[data-testid=stStatusWidget]").count() == 0 else 0
                        time.sleep(0.5)
                    print(json.dumps({"run": run, "view": view, **_status(server.proc.pid)}), flush=True)
            browser.close()
        final = _status(server.proc.pid)
        print(json.dumps({"phase": "end", "runs": len(runs), "views": len(VIEWS), "peak_rss_mb": final["VmHWM"],
                          "rss_mb": final["VmRSS"], "goal_mb": 1536}), flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
