"""The README names every system package that `.ci/run` installs for the test command."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_readme_lists_the_system_packages_that_ci_run_installs():
    script = (REPO / ".ci" / "run").read_text()
    installed = set(re.findall(r"need\+=\(([\w.+-]+)\)", script))
    assert {"docker.io", "postgresql", "chromium"} <= installed  # the parse found them
    readme = (REPO / "README.md").read_text()
    [bullet] = re.findall(r"- \*\*The system packages that `\.ci/run` installs\*\*(.*?)\n- ",
                          readme, flags=re.S)
    names = bullet.split("(Debian names):", 1)[1].split(". ", 1)[0]  # its first sentence
    listed = set(re.findall(r"`([\w.+-]+)`", names))
    assert listed == installed
