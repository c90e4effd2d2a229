"""The doctest builder compares the exception messages that examples show.

Sphinx's default ``doctest_default_flags`` include ``IGNORE_EXCEPTION_DETAIL``,
under which ``ValueError: anything`` matches any ``ValueError``: stale error
texts in the docs passed. docs/conf.py sets its own flags; these tests read them
from the configuration Sphinx really loads and run an example with them.
"""

from __future__ import annotations

import doctest
import os
import subprocess
import sys
import tomllib

from tests.docs.conftest import DOCS, ROOT

# Read conf.py as Sphinx does, with the config values (and defaults) that
# sphinx.ext.doctest itself registers: removing the setting brings Sphinx's default back.
_READ_FLAGS = """
import sys
import sphinx.ext.doctest
from sphinx.config import Config
from sphinx.util.tags import Tags

config = Config.read(sys.argv[1], overrides={}, tags=Tags())

class RegisterConfigValues:
    def add_config_value(self, name, default, rebuild, types=(), description=""):
        config.add(name, default, rebuild, types, description)

    def __getattr__(self, name):
        return lambda *args, **kwargs: None

sphinx.ext.doctest.setup(RegisterConfigValues())
config.init_values()
print(int(config.doctest_default_flags))
"""


def _configured_flags() -> int:
    """docs/conf.py's ``doctest_default_flags``, as Sphinx reads the file (in a fresh process)."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "docs_settings"}
    result = subprocess.run([sys.executable, "-c", _READ_FLAGS, str(DOCS)], capture_output=True,
                            text=True, cwd=ROOT, timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return int(result.stdout.strip().splitlines()[-1])


def _run_example(flags: int) -> doctest.TestResults:
    """Run an example whose shown exception message is wrong, with ``flags``."""
    example = (
        ">>> int('x')\n"
        "Traceback (most recent call last):\n"
        "    ...\n"
        "ValueError: a message the code never says\n"
    )
    test = doctest.DocTestParser().get_doctest(example, {}, "stale_message", "<test>", 0)
    runner = doctest.DocTestRunner(optionflags=flags, verbose=False)
    runner.run(test, out=lambda _text: None)
    return runner.summarize(verbose=False)


def test_conf_checks_exception_detail():
    """conf.py keeps ELLIPSIS and DONT_ACCEPT_TRUE_FOR_1 and does not ignore exception detail."""
    flags = _configured_flags()
    assert not flags & doctest.IGNORE_EXCEPTION_DETAIL, "docs/conf.py ignores exception detail"
    assert flags & doctest.ELLIPSIS
    assert flags & doctest.DONT_ACCEPT_TRUE_FOR_1


def test_configured_flags_fail_a_wrong_exception_message():
    """With conf.py's flags a wrong message fails; with Sphinx's default it would have passed."""
    assert _run_example(_configured_flags()).failed == 1
    sphinx_default = doctest.ELLIPSIS | doctest.IGNORE_EXCEPTION_DETAIL | doctest.DONT_ACCEPT_TRUE_FOR_1
    assert _run_example(sphinx_default).failed == 0


def test_pytest_doctests_use_the_same_flags():
    """``pytest --doctest-modules`` compares exception messages too (pyproject's flags = conf.py's)."""
    with open(ROOT / "pyproject.toml", "rb") as f:
        names = tomllib.load(f)["tool"]["pytest"]["ini_options"]["doctest_optionflags"]
    flags = 0
    for name in names:
        flags |= doctest.OPTIONFLAGS_BY_NAME[name]
    assert flags == _configured_flags()
