"""The generated HTML reports as a reader sees them: headless Chromium at a desktop (1300 px) and a phone (390 px)
width, for the bundled sample's studies and for a 60-account world's (every segment).

Every page (index.html and each study's report.html) must fit its viewport (wide tables scroll inside their own
box), show no "Warning", "Traceback" or "NaN", describe every image, and have a title of its own. The measuring is
tools/render_reports.py's check_page.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from csresearch.cli import main

ROOT = Path(__file__).resolve().parents[1]
WIDTHS = (1300, 390)
BOOKS = ("sample", "world60")

sys.path.insert(0, str(ROOT / "tools"))
try:
    import render_reports
finally:
    sys.path.pop(0)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(render_reports.chromium() is None,
                       reason="chromium is not installed (make test installs it where it can)"),
]


@pytest.fixture(scope="module")
def sample_reports(tmp_path_factory):
    """The bundled sample's four studies (params/*.yaml), as `csresearch study` writes them."""
    out = tmp_path_factory.mktemp("sample-reports")
    code = main(["study", *map(str, sorted((ROOT / "params").glob("*.yaml"))), "--out", str(out), "--workers", "2"])
    assert code == 0, "the sample's studies did not all run"
    return out


@pytest.fixture(scope="module")
def world60_reports(tmp_path_factory):
    """A 60-account world (fixed seed), one study per segment plus all segments: small cells everywhere."""
    data = tmp_path_factory.mktemp("world60") / "data"
    assert main(["generate", "--out", str(data), "--accounts", "60", "--seed", "42"]) == 0
    out = tmp_path_factory.mktemp("world60-reports")
    code = main(["study", "--data", str(data), "--segments", "all", "--out", str(out), "--workers", "2"])
    assert code == 0, "the 60-account world's studies did not all run"
    return out


@pytest.fixture(scope="module")
def checks(request):
    """{book: {(page name, width): check_page result}}, measured once per book, lazily."""
    cache: dict[str, dict] = {}

    def get(book: str) -> dict[tuple[str, int], dict]:
        if book not in cache:
            reports = request.getfixturevalue(f"{book}_reports")
            pages = render_reports.pages(reports)
            assert (reports / "index.html") in pages and len(pages) >= 5, f"missing pages in {reports}"
            cache[book] = {(str(p.relative_to(reports)), w): render_reports.check_page(p, w)
                           for p in pages for w in WIDTHS}
        return cache[book]
    return get


def _for(checks, book, width):
    return {name: res for (name, w), res in checks(book).items() if w == width}


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("book", BOOKS)
def test_the_viewport_is_the_width_asked_for(checks, book, width):
    for name, res in _for(checks, book, width).items():
        assert res["inner_width"] == width, f"{name}: measured at {res['inner_width']} px, not {width}"


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("book", BOOKS)
def test_nothing_overflows_horizontally(checks, book, width):
    bad = {name: f"scrollWidth {res['scroll_width']} > {width}: "
                 + "; ".join(f"{o['element']} (right {o['right']})" for o in res["overflowing"][:5])
           for name, res in _for(checks, book, width).items() if res["overflow_px"] > 0 or res["overflowing"]}
    assert not bad, "pages wider than the screen:\n" + "\n".join(f"  {n}: {m}" for n, m in bad.items())


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("book", BOOKS)
def test_no_warning_traceback_or_nan_in_the_text(checks, book, width):
    bad = {name: res["found"] for name, res in _for(checks, book, width).items() if res["found"]}
    assert not bad, "text a reader must not see:\n" + "\n".join(
        f"  {n}: {w!r} e.g. {ctx[0]!r}" for n, found in bad.items() for w, ctx in found.items())


@pytest.mark.parametrize("book", BOOKS)
def test_every_image_has_alt_text(checks, book):
    pages = _for(checks, book, WIDTHS[0])
    assert any(res["images"] for res in pages.values()), "no images at all: the reports lost their figures"
    bad = {name: [i["alt"] for i in res["bad_images"]] for name, res in pages.items() if res["bad_images"]}
    assert not bad, f"images without a description: {bad}"


@pytest.mark.parametrize("book", BOOKS)
def test_every_page_has_a_title_of_its_own(checks, book):
    titles = {name: res["title"].strip() for name, res in _for(checks, book, WIDTHS[0]).items()}
    assert all(titles.values()), f"pages without a title: {[n for n, t in titles.items() if not t]}"
    shared = {t: [n for n, u in titles.items() if u == t] for t in set(titles.values())}
    shared = {t: names for t, names in shared.items() if len(names) > 1}
    assert not shared, f"titles shared by several pages: {shared}"


def test_the_command_line_check_agrees(sample_reports, checks, capsys):
    """`render_reports.py REPORTS --check` prints one line per page and width and fails exactly when a page does."""
    first = {n: r for (n, w), r in checks("sample").items() if w == WIDTHS[0]}
    unique_titles = len({r["title"] for r in first.values()}) == len(first)
    expected = 0 if unique_titles and not any(r["failures"] for r in checks("sample").values()) else 1
    code = render_reports.main([str(sample_reports), "--check"])
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith(("ok", "FAIL"))]
    assert code == expected
    assert sum(" @" in ln for ln in lines) == len(render_reports.pages(sample_reports)) * len(WIDTHS)


def test_reports_print_to_pdf(sample_reports, tmp_path):
    assert render_reports.main([str(sample_reports), "--pdf", "--out", str(tmp_path)]) == 0
    pdfs = sorted(tmp_path.glob("*.pdf"))
    assert [p.stem for p in pdfs] == sorted(p.parent.name for p in sample_reports.glob("*/report.html"))
    for pdf in pdfs:
        head = pdf.read_bytes()[:5]
        assert head == b"%PDF-", f"{pdf.name} is not a PDF"


@pytest.mark.parametrize("book", BOOKS)
def test_the_rendered_pages_speak_of_each_finding_with_its_verdict(request, book):
    """One source of truth, in the HTML a reader gets: every sentence marked as speaking of a finding
    (data-finding / data-verdict on the executive page and the index) has that finding's verdict in the study's
    results.json, and no headline of another verdict of the same claim appears anywhere in the report."""
    import html as htmllib
    import json
    import re

    from test_executive import _other_headlines, _claims

    reports = request.getfixturevalue(f"{book}_reports")
    claims = _claims()
    index = (reports / "index.html").read_text(encoding="utf-8")
    seen = {}
    for folder in sorted(p.parent for p in reports.glob("*/report.html")):
        res = json.loads((folder / "results.json").read_text(encoding="utf-8"))
        found = {f["id"]: f for f in res["findings"]}
        page = (folder / "report.html").read_text(encoding="utf-8")
        marks = re.findall(r'data-finding="([^"]+)" data-verdict="([^"]+)"', page)
        assert marks, f"{folder.name}: the executive page marks no finding"
        for fid, verdict in marks:
            assert found[fid]["verdict"] == verdict, f"{folder.name}: the page speaks of {fid} as {verdict}"
            seen.setdefault(fid, set()).add(verdict)
        text = htmllib.unescape(re.sub(r"<[^>]+>", " ", page))
        text = re.sub(r"\s+", " ", text)
        for f in res["findings"]:
            for other in _other_headlines(claims[f["id"].split(":")[0]], f["verdict"]):
                assert other not in text, f"{folder.name}: {f['id']} is {f['verdict']}, yet the report says {other!r}"
    for fid, verdict in re.findall(r'data-finding="([^"]+)" data-verdict="([^"]+)"', index):
        assert verdict in seen.get(fid, ()), f"the index speaks of {fid} as {verdict}, no report does"
