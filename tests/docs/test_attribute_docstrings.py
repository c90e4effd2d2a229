"""Attribute docstrings of the models: what editors (pyright, Pylance) show on hover.

pyright shows an attribute's documentation only from the string literal right
after its declaration in the class body. Every field has one, equal to its
help_text (the text the admin and the reference show); every reverse relation
and default manager is declared with one.
"""

from __future__ import annotations

import ast
import inspect

import pytest
from django.apps import apps

MODELS = list(apps.get_app_config("container_manager").get_models())


def attribute_docstrings(model) -> dict[str, str]:
    """{attribute: docstring} for the class body of ``model``, from its source."""
    tree = ast.parse(inspect.getsource(inspect.getmodule(model)))
    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == model.__name__]
    docs = {}
    for node, following in zip(cls.body, cls.body[1:], strict=False):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
        elif isinstance(node, ast.AnnAssign):
            target = node.target
        else:
            continue
        if (
            isinstance(target, ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            docs[target.id] = inspect.cleandoc(following.value.value)
    return docs


def _words(text: str) -> str:
    return " ".join(str(text).split())


@pytest.mark.parametrize("model", MODELS, ids=[m.__name__ for m in MODELS])
def test_every_field_has_an_attribute_docstring_equal_to_its_help_text(model):
    docs = attribute_docstrings(model)
    fields = [f for f in model._meta.concrete_fields if not f.auto_created]
    assert fields
    missing = [f.name for f in fields if f.name not in docs]
    assert not missing, f"{model.__name__}: fields without an attribute docstring: {missing}"
    differ = [f.name for f in fields if _words(docs[f.name]) != _words(f.help_text)]
    assert not differ, f"{model.__name__}: docstring differs from help_text: {differ}"


@pytest.mark.parametrize("model", MODELS, ids=[m.__name__ for m in MODELS])
def test_reverse_relations_and_manager_are_declared_with_a_docstring(model):
    docs = attribute_docstrings(model)
    annotations = model.__dict__.get("__annotations__", {})
    reverse = [
        rel.get_accessor_name()
        for rel in model._meta.get_fields()
        if rel.auto_created and not rel.concrete and rel.is_relation
    ]
    for name in [*reverse, model._meta.default_manager.name]:
        assert name in annotations, f"{model.__name__}.{name} has no declared type"
        assert "Example:" in docs.get(name, ""), f"{model.__name__}.{name}: no docstring/Example"
    for name in reverse:
        # django-types' manager of a reverse relation (no runtime object: a bare annotation)
        assert annotations[name].startswith("RelatedManager["), annotations[name]
