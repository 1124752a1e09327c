"""The vendored `dvc plots show` template (plots/offline.html): Vega inlined, nothing from a CDN."""

import configparser
import hashlib
import re
from pathlib import Path

from dvc_render.vega import VegaRenderer

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "plots" / "offline.html"


def test_dvc_config_points_at_the_template():
    config = configparser.ConfigParser()
    config.read(ROOT / ".dvc" / "config")
    assert (ROOT / ".dvc" / config["plots"]["html_template"]).resolve() == TEMPLATE


def test_template_inlines_the_scripts_it_names():
    page = TEMPLATE.read_text(encoding="utf-8")
    assert "{plot_divs}" in page and "{refresh_tag}" in page
    assert "{scripts}" not in page  # where DVC would put its CDN <script src=...> tags
    assert not re.search(r"<script[^>]*\ssrc=", page)
    inlined = re.findall(r'<script data-package="([\w-]+)@([\d.]+)">\n(.*?)\n</script>', page, re.S)
    assert [name for name, _, _ in inlined] == ["vega", "vega-lite", "vega-embed"]
    for name, version, code in inlined:
        digest = hashlib.sha256(code.encode()).hexdigest()
        assert f"{name}@{version} build/{name}.min.js sha256 {digest}" in page, name  # as built
    # the majors DVC's own page loads, i.e. the ones its Vega-Lite specs are written for
    wanted = dict(re.findall(r"npm/([\w-]+)@(\d+)\.", VegaRenderer.SCRIPTS))
    assert {name: version.split(".")[0] for name, version, _ in inlined} == wanted
    assert "Redistribution and use in source and binary forms" in page  # their BSD licence
