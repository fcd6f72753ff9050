"""Render study reports in headless Chromium, to look at them as a reader would, and check them.

    .venv/bin/python tools/render_reports.py REPORTS_DIR [--out DIR] [--study NAME] [--width PX]
    .venv/bin/python tools/render_reports.py REPORTS_DIR --check [--widths 1300,390]
    .venv/bin/python tools/render_reports.py REPORTS_DIR --pdf [--out DIR]

Without --check/--pdf: renders REPORTS_DIR/index.html and one study's report.html (the first, or --study) to
full-page PNGs and prints their paths. --check loads index.html and every */report.html at each width and prints
one line per page and width (exit 1 on any failure): horizontal overflow, title, images without a real alt text,
and "Warning", "Traceback" or "NaN" in the visible text. --pdf prints every report.html to OUT/<study>.pdf with
the print stylesheet. Chromium runs with the network switched off, so anything a report tried to fetch would be
missing.
"""
from __future__ import annotations

import argparse
import html as _html
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>"]


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def render(html: Path, png: Path, width: int = 1280, height: int = 12000) -> Path:
    exe = chromium()
    if exe is None:
        raise FileNotFoundError("no chromium on PATH (Debian: apt-get install chromium)")
    png = png.resolve()
    png.unlink(missing_ok=True)
    target, frame = html.resolve().as_uri(), None
    if width < MIN_WINDOW:  # see MIN_WINDOW: the page goes in a WIDTH-px iframe, and the PNG is cropped to it
        fd, name = tempfile.mkstemp(prefix=".cs-frame-", suffix=".html", dir=html.resolve().parent)
        frame = Path(name)
        with open(fd, "w", encoding="utf-8") as f:
            f.write(_FRAME.format(src=html.name, width=width, height=height))
        target = frame.as_uri()
    try:
        with tempfile.TemporaryDirectory() as profile:
            subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}", f"--window-size={max(width, MIN_WINDOW)},{height}",
                            f"--screenshot={png}", target], check=True, capture_output=True, timeout=120)
    finally:
        if frame is not None:
            frame.unlink(missing_ok=True)
    if not png.exists():
        raise RuntimeError(f"chromium wrote no screenshot of {html}")
    if width < MIN_WINDOW:
        from PIL import Image

        with Image.open(png) as img:
            cropped = img.crop((0, 0, width, img.height))
        cropped.save(png)
    return png


#: image descriptions that describe nothing: nbconvert's default, our template's fallback, and the like
GENERIC_ALTS = {"", "no description has been provided for this image", "figure", "image", "png", "plot", "chart"}
#: text a reader must never see in a report (case-sensitive, as Python and pandas print them)
FORBIDDEN = ("Warning", "Traceback", "NaN")
_HEIGHTS = {390: 844}
#: headless Chromium (the new headless mode, Chromium 156 here) will not make a window narrower than 500 px: a 390
#: px --window-size gives window.innerWidth == 500. So every page is measured inside an <iframe> exactly WIDTH px
#: wide (its media queries, innerWidth and scrollWidth are the iframe's), in a window wide enough to hold it.
MIN_WINDOW = 500

#: measures the page once everything (the data: images) has loaded and writes JSON into <pre id="cs-check">
_PROBE = r"""
<script>
window.addEventListener("load", function () {
  function describe(el) {
    var s = el.tagName.toLowerCase();
    if (el.id) s += "#" + el.id;
    if (typeof el.className === "string" && el.className.trim())
      s += "." + el.className.trim().split(/\s+/).slice(0, 3).join(".");
    var t = (el.innerText || el.textContent || "").replace(/\s+/g, " ").trim();
    return t ? s + " \"" + t.slice(0, 50) + (t.length > 50 ? "\u2026" : "") + "\"" : s;
  }
  function clipped(el) {  // inside a box that scrolls or clips horizontally: that box is what the page sees
    for (var a = el.parentElement; a && a !== document.body && a !== document.documentElement; a = a.parentElement) {
      var ox = getComputedStyle(a).overflowX;
      if (ox !== "visible") return true;
    }
    return false;
  }
  var vw = window.innerWidth, offenders = [];
  document.querySelectorAll("body *").forEach(function (el) {
    var st = getComputedStyle(el);
    if (st.display === "none" || st.visibility === "hidden" || st.position === "fixed") return;
    var r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) return;
    var right = r.right + window.scrollX;
    if (st.overflowX === "visible") right = Math.max(right, r.left + window.scrollX + el.scrollWidth);
    if (right > vw + 0.5 && !clipped(el)) offenders.push([el, right]);
  });
  // keep the innermost: an element none of whose descendants overflows too
  var set = new Set(offenders.map(function (o) { return o[0]; }));
  var inner = offenders.filter(function (o) {
    var el = o[0];
    return !Array.prototype.some.call(el.querySelectorAll("*"), function (d) { return set.has(d); });
  });
  var imgs = [];
  document.querySelectorAll("img").forEach(function (img, i) {
    var alt = img.getAttribute("alt");
    imgs.push({index: i, alt: alt, src: (img.getAttribute("src") || "").slice(0, 40),
               width: img.getBoundingClientRect().width, natural_width: img.naturalWidth});
  });
  var out = {
    inner_width: vw, inner_height: window.innerHeight, scroll_height: document.documentElement.scrollHeight,
    scroll_width: document.documentElement.scrollWidth, client_width: document.documentElement.clientWidth,
    body_scroll_width: document.body.scrollWidth,
    title: document.title,
    overflowing: inner.slice(0, 25).map(function (o) { return {element: describe(o[0]), right: Math.round(o[1])}; }),
    n_overflowing: inner.length,
    images: imgs,
    text: document.body.innerText
  };
  window.parent.postMessage(JSON.stringify(out), "*");
});
</script>
"""
#: the frame the page is loaded into: an <iframe> exactly WIDTH px wide, whose report arrives by postMessage
_FRAME = """<!DOCTYPE html><html><head><meta charset="utf-8"></head><body style="margin:0">
<iframe src="{src}" style="border:0;display:block;width:{width}px;height:{height}px"></iframe>
<script>window.addEventListener("message", function (e) {{
  var pre = document.createElement("pre"); pre.id = "cs-check"; pre.textContent = e.data; document.body.appendChild(pre);
}});</script></body></html>
"""
_RESULT = re.compile(r'<pre id="cs-check"[^>]*>(.*?)</pre>', re.S)


def _inject(page: str) -> str:
    at = page.lower().rfind("</body>")
    return page[:at] + _PROBE + page[at:] if at >= 0 else page + _PROBE


def _snippets(text: str, word: str, n: int = 3) -> list[str]:
    return [" ".join(text[max(0, m.start() - 40): m.end() + 40].split()) for m in re.finditer(re.escape(word), text)][:n]


def check_page(html_path: Path | str, width: int, height: int | None = None) -> dict:
    """Load one page in headless Chromium at a viewport ``width`` px wide and measure it as a reader sees it.

    Returns a dict: ``width``, ``inner_width`` (the page's window.innerWidth: must equal width), ``scroll_width``
    (document.documentElement.scrollWidth), ``overflow_px`` (scroll_width - width, > 0 means the page scrolls
    sideways), ``overflowing`` (innermost elements whose right edge passes the viewport, each a short selector and
    text; elements inside a box that scrolls or clips horizontally are that box's business, not the page's),
    ``title``, ``images`` (every <img>: alt, rendered width), ``bad_images`` (those whose alt is missing, empty or
    generic), ``found`` ({word: [context, ...]} for "Warning", "Traceback", "NaN" in the visible text), ``text``
    (document.body.innerText) and ``failures`` (a list of short reasons; empty when the page passes).
    """
    html_path = Path(html_path).resolve()
    exe = chromium()
    if exe is None:
        raise FileNotFoundError("no chromium on PATH (Debian: apt-get install chromium)")
    height = height or _HEIGHTS.get(width, 900)
    page = html_path.read_text(encoding="utf-8")
    # the copy sits next to the original so that relative links and images resolve as they would
    fd, tmp = tempfile.mkstemp(prefix=".cs-check-", suffix=".html", dir=html_path.parent)
    frame = Path(tmp).with_name(Path(tmp).stem + "-frame.html")
    try:
        with open(fd, "w", encoding="utf-8") as f:
            f.write(_inject(page))
        frame.write_text(_FRAME.format(src=Path(tmp).name, width=width, height=height), encoding="utf-8")
        with tempfile.TemporaryDirectory() as profile:
            proc = subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}",
                                   f"--window-size={max(width, MIN_WINDOW) + 40},{height + 40}",
                                   "--virtual-time-budget=5000", "--dump-dom", frame.as_uri()],
                                  capture_output=True, timeout=120, text=True, encoding="utf-8", errors="replace")
    finally:
        Path(tmp).unlink(missing_ok=True)
        frame.unlink(missing_ok=True)
    m = _RESULT.search(proc.stdout)
    if m is None:
        raise RuntimeError(f"chromium gave no measurements of {html_path} at {width}px "
                           f"(exit {proc.returncode}): {proc.stderr[-500:]}")
    res = json.loads(_html.unescape(m.group(1)))
    res["page"] = str(html_path)
    res["width"] = width
    res["overflow_px"] = res["scroll_width"] - width
    res["bad_images"] = [i for i in res["images"] if (i["alt"] or "").strip().lower() in GENERIC_ALTS]
    res["found"] = {w: _snippets(res["text"], w) for w in FORBIDDEN if w in res["text"]}
    failures = []
    if res["inner_width"] != width:
        failures.append(f"viewport is {res['inner_width']}px, not {width}px")
    if res["overflow_px"] > 0 or res["overflowing"]:
        failures.append(f"overflows by {res['overflow_px']}px: "
                        + "; ".join(f"{o['element']} (right {o['right']})" for o in res["overflowing"][:3])
                        + (f" and {res['n_overflowing'] - 3} more" if res["n_overflowing"] > 3 else ""))
    if not res["title"].strip():
        failures.append("no title")
    if res["bad_images"]:
        failures.append(f"{len(res['bad_images'])} of {len(res['images'])} image(s) without a real alt "
                        f"({', '.join(repr(i['alt']) for i in res['bad_images'][:3])})")
    for w, ctx in res["found"].items():
        failures.append(f"{w!r} in the text: {ctx[0]!r}")
    res["failures"] = failures
    return res


def pages(reports: Path) -> list[Path]:
    """index.html (if any) and every study's report.html under REPORTS, in a fixed order."""
    index = [reports / "index.html"] if (reports / "index.html").exists() else []
    return index + sorted(reports.glob("*/report.html"))


def print_pdf(html: Path, pdf: Path) -> Path:
    """One page -> PDF with its print stylesheet (A4/Letter as Chromium's default, no header or footer)."""
    exe = chromium()
    if exe is None:
        raise FileNotFoundError("no chromium on PATH (Debian: apt-get install chromium)")
    pdf.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run([exe, *FLAGS, f"--user-data-dir={profile}", "--no-pdf-header-footer",
                        "--virtual-time-budget=5000", f"--print-to-pdf={pdf}", html.resolve().as_uri()],
                       check=True, capture_output=True, timeout=180)
    if not pdf.exists() or pdf.stat().st_size == 0:
        raise RuntimeError(f"chromium wrote no PDF of {html}")
    return pdf


def check(reports: Path, widths=(1300, 390), out=None) -> int:
    """Check every page at every width, one line each; 1 if any page fails, else 0."""
    out = out or sys.stdout
    failed = 0
    titles: dict[str, list[str]] = {}
    for page in pages(reports):
        name = str(page.relative_to(reports))
        for w in widths:
            res = check_page(page, w)
            if w == widths[0]:
                titles.setdefault(res["title"], []).append(name)
            status = "ok  " if not res["failures"] else "FAIL"
            failed += bool(res["failures"])
            print(f"{status} {name} @{w}px: title {res['title']!r}, scrollWidth {res['scroll_width']}, "
                  f"{len(res['images'])} image(s)" + "".join(f"\n       - {f}" for f in res["failures"]), file=out)
    for title, names in titles.items():
        if len(names) > 1:
            failed += 1
            print(f"FAIL title {title!r} is shared by {', '.join(names)}", file=out)
    return 1 if failed else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("reports", type=Path)
    ap.add_argument("--out", type=Path, default=None, help="where PNGs/PDFs go (default: REPORTS/screenshots)")
    ap.add_argument("--study", default=None)
    ap.add_argument("--width", type=int, default=1280, help="viewport width of the PNGs (default 1280)")
    ap.add_argument("--check", action="store_true", help="check every page at --widths; exit 1 on any failure")
    ap.add_argument("--widths", default="1300,390", help="widths for --check (default 1300,390)")
    ap.add_argument("--pdf", action="store_true", help="print every report.html to OUT/<study>.pdf")
    args = ap.parse_args(argv)
    if not args.reports.is_dir() or not pages(args.reports):
        print(f"no reports under {args.reports}", file=sys.stderr)
        return 2
    if args.check or args.pdf:
        code = 0
        if args.pdf:
            out = args.out or args.reports / "screenshots"
            out.mkdir(parents=True, exist_ok=True)
            for html in sorted(args.reports.glob("*/report.html")):
                print(print_pdf(html, out / f"{html.parent.name}.pdf"))
        if args.check:
            code = check(args.reports, tuple(int(w) for w in args.widths.split(",")))
        return code
    out = args.out or args.reports / "screenshots"
    out.mkdir(parents=True, exist_ok=True)
    studies = sorted(p.parent.name for p in args.reports.glob("*/report.html"))
    if not studies:
        print(f"no study reports under {args.reports}", file=sys.stderr)
        return 2
    study = args.study or studies[0]
    for html, name in ((args.reports / "index.html", "index.png"), (args.reports / study / "report.html", f"{study}.png")):
        print(render(html, out / name, width=args.width))
    return 0


if __name__ == "__main__":
    sys.exit(main())
