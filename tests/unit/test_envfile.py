import pytest
from django.core.exceptions import ValidationError
from hypothesis import given, settings
from hypothesis import strategies as st

from container_manager.envfile import format_env, parse_env_text
from container_manager.models import EnvironmentVariableTemplate


@pytest.mark.parametrize(
    "text,expected",
    [
        ("", {}),
        ("A=1", {"A": "1"}),
        ("A=1\n\n  \nB=2\n", {"A": "1", "B": "2"}),
        ("A=1\r\nB=2\r\n", {"A": "1", "B": "2"}),
        ("URL=postgres://u:p@db/x?a=b=c", {"URL": "postgres://u:p@db/x?a=b=c"}),
        ("EMPTY=", {"EMPTY": ""}),
        ('EMPTY=""', {"EMPTY": ""}),
        ('G="hello world"', {"G": "hello world"}),
        ('Q="say \\"hi\\""', {"Q": 'say "hi"'}),
        ('B="back\\\\slash"', {"B": "back\\slash"}),
        ("_under=x", {"_under": "x"}),
        ("HASH=a#b", {"HASH": "a#b"}),
    ],
)
def test_valid(text, expected):
    assert parse_env_text(text) == expected


@pytest.mark.parametrize(
    "text,message",
    [
        ("# comment", "Line 1: comments are not supported"),
        ("A=1\n  # indented comment", "Line 2: comments are not supported"),
        ("A = 1", "Line 1: space before '='"),
        ("A= 1", "Line 1: space after '='"),
        ("A=1 ", "Line 1: trailing whitespace"),
        ("A=two words", "Line 1: the value contains spaces"),
        ("NOEQUALS", "Line 1: no '=' found"),
        ("1ABC=x", "Line 1: invalid key: use letters, digits and '_'"),
        ("MY-KEY=x", "Line 1: invalid key: use letters, digits and '_'"),
        ("=x", "Line 1: no key before '='"),
        ("A B=x", "Line 1: invalid key: the text before the first '=' contains whitespace"),
        ("A=1\nA=2", "Line 2: duplicate key 'A' (first set on line 1)"),
        ('A="open', "Line 1: the opening double quote is never closed"),
        ('A="x"y', "Line 1: text after the closing double quote"),
        ('A=x"y', "Line 1: a double quote inside an unquoted value"),
        (" A=1", "Line 1: leading whitespace"),
        ("A=\x00", "Line 1: contains a NUL"),
    ],
)
def test_invalid_lines_are_named(text, message):
    with pytest.raises(ValidationError) as info:
        parse_env_text(text)
    assert any(m.startswith(message) for m in info.value.messages), info.value.messages


def test_every_bad_line_is_reported_at_once():
    with pytest.raises(ValidationError) as info:
        parse_env_text("OK=1\n# c\nBAD KEY=1\nOK=2\nFINE=yes")
    assert [m.split(":")[0] for m in info.value.messages] == ["Line 2", "Line 3", "Line 4"]


def test_non_string_is_a_validation_error():
    with pytest.raises(ValidationError, match="must be a string"):
        parse_env_text(None)


def test_template_clean_names_field_and_lines():
    template = EnvironmentVariableTemplate(name="t", environment_variables_text="A=1\n#x\nB = 2")
    with pytest.raises(ValidationError) as info:
        template.clean()
    assert info.value.message_dict == {
        "environment_variables_text": [
            "Line 2: comments are not supported; remove the line starting with '#'.",
            "Line 3: space before '='; write KEY=VALUE with no spaces around '='.",
        ]
    }


def test_format_rejects_what_the_format_cannot_carry():
    with pytest.raises(ValueError, match="newline"):
        format_env({"A": "x\ny"})
    with pytest.raises(ValueError, match="Invalid environment variable name"):
        format_env({"1A": "x"})
    with pytest.raises(ValueError, match="must be a string"):
        format_env({"A": 1})


keys = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,15}", fullmatch=True)
values = st.text(
    alphabet=st.characters(blacklist_characters="\n\r\x00", blacklist_categories=("Cs",)),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, values, max_size=8))
def test_format_then_parse_round_trips(env):
    assert parse_env_text(format_env(env)) == env


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=200))
def test_parser_raises_nothing_but_validation_error(text):
    try:
        result = parse_env_text(text)
    except ValidationError as exc:
        assert all(m.startswith("Line ") for m in exc.messages)
    else:
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in result.items())
        # whatever parses can be written back and parses the same
        assert parse_env_text(format_env(result)) == result
