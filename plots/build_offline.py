"""Build plots/offline.html: DVC's plots page with Vega, Vega-Lite and vega-embed inlined.

`dvc plots show` writes a page that loads these three scripts from a CDN, so without a network it
is blank. `.dvc/config` points DVC at this template instead (`plots.html_template`, relative to
.dvc/), which carries the scripts itself.

Why the built page is committed rather than built at set-up time: DVC reads the template path from
the committed `.dvc/config`, and a configured template that is missing makes `dvc plots show` fail
on a fresh clone; npm would also become a set-up requirement of everyone who only wants plots. So
the minified files of pinned versions are vendored, built once by this script from the npm registry
(`npm pack`, which checks each tarball's integrity), with their licence in the page. Re-run it to
upgrade (`python plots/build_offline.py`, with npm on PATH); tests/test_plots_template.py checks
the result.

The template has no `{scripts}` placeholder, so DVC adds no CDN script tags; `{refresh_tag}` and
`{plot_divs}` are DVC's other placeholders.
"""

import hashlib
import logging
import subprocess
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "offline.html"
# package -> (version, file inside the tarball); vega-embed runs with these majors (its peer deps)
PACKAGES = {
    "vega": ("5.33.1", "package/build/vega.min.js"),
    "vega-lite": ("5.23.0", "package/build/vega-lite.min.js"),
    "vega-embed": ("6.29.0", "package/build/vega-embed.min.js"),
}
LICENCE_FROM = "vega-lite"  # vega's tarball ships no LICENSE file; all three share this one


def npm_pack(package: str, version: str, folder: Path) -> Path:
    out = subprocess.run(
        ["npm", "pack", f"{package}@{version}", "--pack-destination", str(folder), "--silent"],
        capture_output=True,
        text=True,
        check=True,
    )
    return folder / out.stdout.strip().splitlines()[-1]


def member(tarball: Path, name: str) -> str:
    with tarfile.open(tarball) as archive:
        return archive.extractfile(name).read().decode("utf-8")


def build() -> str:
    scripts, notes, licence = [], [], ""
    with tempfile.TemporaryDirectory() as scratch:
        for package, (version, path) in PACKAGES.items():
            tarball = npm_pack(package, version, Path(scratch))
            code = member(tarball, path)
            if "</script" in code.lower():
                raise SystemExit(f"{package}: its code contains '</script' and cannot be inlined")
            digest = hashlib.sha256(code.encode()).hexdigest()
            notes.append(f"  {package}@{version} {path.removeprefix('package/')} sha256 {digest}")
            scripts.append(f'<script data-package="{package}@{version}">\n{code}\n</script>')
            if package == LICENCE_FROM:
                licence = member(tarball, "package/LICENSE")
    header = "\n".join(
        [
            "<!--",
            "DVC plots page that renders offline: built by plots/build_offline.py, do not edit.",
            "Inlined from the npm registry:",
            *notes,
            "Each is under the BSD 3-Clause licence below (the minified bundles also include small",
            "dependencies under permissive licences, e.g. d3 and semver: ISC; see the packages).",
            "",
            licence.strip().replace("--", "- -"),
            "-->",
        ]
    )
    inlined = "\n".join(scripts)
    return f"""<!DOCTYPE html>
{header}
<html>
<head>
<meta charset="utf-8">
{{refresh_tag}}
<title>DVC plots</title>
{inlined}
<style>
table {{ border-spacing: 15px; }}
</style>
</head>
<body>
{{plot_divs}}
</body>
</html>
"""


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    TEMPLATE.write_text(build(), encoding="utf-8")
    logging.info("wrote %s", TEMPLATE)
