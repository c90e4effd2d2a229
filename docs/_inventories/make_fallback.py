"""Write the small offline fallback inventories used by intersphinx (docs/conf.py).

Online (Read the Docs) the real inventories load first and these are never read.
Offline (only package registries reachable) intersphinx falls back to these, so
that the build neither warns about unreachable inventories nor loses the links
of the external names our pages use most. Regenerate with
``python docs/_inventories/make_fallback.py``.
"""

import zlib
from pathlib import Path

HERE = Path(__file__).parent

INVENTORIES = {
    "python": ("Python", "3", [
        ("str", "py:class", "library/stdtypes.html#str"),
        ("int", "py:class", "library/functions.html#int"),
        ("float", "py:class", "library/functions.html#float"),
        ("bool", "py:class", "library/functions.html#bool"),
        ("dict", "py:class", "library/stdtypes.html#dict"),
        ("list", "py:class", "library/stdtypes.html#list"),
        ("tuple", "py:class", "library/stdtypes.html#tuple"),
        ("object", "py:class", "library/functions.html#object"),
        ("type", "py:class", "library/functions.html#type"),
        ("None", "py:data", "library/constants.html#None"),
        ("True", "py:data", "library/constants.html#True"),
        ("False", "py:data", "library/constants.html#False"),
        ("Exception", "py:exception", "library/exceptions.html#Exception"),
        ("ValueError", "py:exception", "library/exceptions.html#ValueError"),
        ("RuntimeError", "py:exception", "library/exceptions.html#RuntimeError"),
        ("datetime.timedelta", "py:class", "library/datetime.html#datetime.timedelta"),
        ("datetime.datetime", "py:class", "library/datetime.html#datetime.datetime"),
        ("collections.abc.Mapping", "py:class", "library/collections.abc.html#collections.abc.Mapping"),
        ("collections.abc.Sequence", "py:class", "library/collections.abc.html#collections.abc.Sequence"),
        ("typing.Any", "py:data", "library/typing.html#typing.Any"),
        ("typing.Literal", "py:data", "library/typing.html#typing.Literal"),
        ("typing.ClassVar", "py:data", "library/typing.html#typing.ClassVar"),
        ("abc.ABC", "py:class", "library/abc.html#abc.ABC"),
        ("enum.Enum", "py:class", "library/enum.html#enum.Enum"),
    ]),
    "django": ("Django", "stable", [
        ("django.core.exceptions.ValidationError", "py:exception", "ref/exceptions/#django.core.exceptions.ValidationError"),
        ("django.core.exceptions.ObjectDoesNotExist", "py:exception", "ref/exceptions/#django.core.exceptions.ObjectDoesNotExist"),
        ("django.core.exceptions.MultipleObjectsReturned", "py:exception", "ref/exceptions/#django.core.exceptions.MultipleObjectsReturned"),
        ("django.core.exceptions.ImproperlyConfigured", "py:exception", "ref/exceptions/#django.core.exceptions.ImproperlyConfigured"),
        ("django.db.models.Model", "py:class", "ref/models/instances/#django.db.models.Model"),
        ("django.db.models.query.QuerySet", "py:class", "ref/models/querysets/#django.db.models.query.QuerySet"),
        ("django.db.models.Manager", "py:class", "topics/db/managers/#django.db.models.Manager"),
        ("django.apps.AppConfig", "py:class", "ref/applications/#django.apps.AppConfig"),
        ("django.core.management.BaseCommand", "py:class", "howto/custom-management-commands/#django.core.management.BaseCommand"),
        ("django.contrib.admin.ModelAdmin", "py:class", "ref/contrib/admin/#django.contrib.admin.ModelAdmin"),
        ("django.contrib.admin.TabularInline", "py:class", "ref/contrib/admin/#django.contrib.admin.TabularInline"),
        ("django.http.HttpRequest", "py:class", "ref/request-response/#django.http.HttpRequest"),
    ]),
    "docker": ("Docker SDK for Python", "stable", [
        ("docker.client.DockerClient", "py:class", "client.html#docker.client.DockerClient"),
        ("docker.errors.APIError", "py:class", "api.html#docker.errors.APIError"),
    ]),
}

for key, (project, version, entries) in INVENTORIES.items():
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {project}\n# Version: {version}\n"
        "# The remainder of this file is compressed using zlib.\n"
    ).encode()
    body = "".join(f"{name} {role} 1 {uri} -\n" for name, role, uri in entries).encode()
    (HERE / f"{key}.inv").write_bytes(header + zlib.compress(body))
