"""params: one declarative check for every registry and schema, with one-sentence errors."""

from dataclasses import dataclass
from typing import Annotated, Literal

import pytest
from pydantic import Field

from aelab.errors import ConfigError
from aelab.params import describe, is_list_setting, key_text, listing, short, slug, validate


def factory(input_shape, size: Annotated[int, Field(ge=1, le=10, description="units")] = 3,
            kind: Literal["a", "b"] = "a", hidden: list[int] = (4,)):
    """A model-like factory: its keyword parameters are the declarations."""


@dataclass
class Table:
    rate: Annotated[float, Field(gt=0, description="a step size")] = 0.1
    name: str = "x"


def test_a_factory_gets_every_parameter_with_defaults_filled_in():
    assert validate(factory, {"size": 5}) == {"size": 5, "kind": "a", "hidden": [4]}


def test_a_dataclass_comes_back_as_an_instance():
    assert validate(Table, {"rate": 2}) == Table(rate=2.0)


@pytest.mark.parametrize("data,message", [
    ({"size": 0}, "models[0].size = 0 is not allowed: it should be greater than or equal to 1."),
    ({"size": "3"}, "models[0].size = '3' is not allowed: it should be a valid integer."),
    ({"kind": "c"}, "models[0].kind = 'c' is not allowed: it should be 'a' or 'b'."),
])
def test_a_bad_value_is_one_sentence_naming_the_key(data, message):
    with pytest.raises(ConfigError) as err:
        validate(factory, data, "models[0]")
    assert str(err.value) == message


def test_an_unknown_key_lists_the_allowed_ones():
    with pytest.raises(ConfigError, match=r"models\[0\]\.sise.*size, kind, hidden"):
        validate(factory, {"sise": 1}, "models[0]")


def test_not_a_table_and_too_deep_are_sentences():
    with pytest.raises(ConfigError, match="train must be a table"):
        validate(Table, [1], "train")
    deep: dict = {}
    node = deep
    for _ in range(5000):
        node["name"] = {}
        node = node["name"]
    with pytest.raises(ConfigError, match="^train.name = a dict nested too deeply is not allowed"):
        validate(Table, deep, "train")


def test_list_settings_are_known_from_their_type():
    assert is_list_setting(factory, "hidden") and not is_list_setting(factory, "size")
    assert not is_list_setting(factory, "absent")


def test_names_must_be_safe_file_names():
    assert slug("run-1.a_b", "name") == "run-1.a_b"
    for bad in ("../x", ".hidden", "a/b", "", "x" * 81, 3):
        with pytest.raises(ConfigError, match="names become file names"):
            slug(bad, "name")


def test_message_helpers_bound_what_they_quote():
    assert short("x" * 100) == repr("x" * 100)[:57] + "..." and len(short("x" * 100)) == 60
    assert listing(range(20), limit=3) == "0, 1, 2, ... (20 in all)"
    assert key_text("a\nb") == "a\\nb" and len(key_text("k" * 500)) == 100


def test_describe_reads_the_declared_descriptions():
    docs = {d.name: d for d in describe(factory)}
    assert set(docs) == {"size", "kind", "hidden"} and docs["size"].doc == "units"
    assert docs["kind"].type == "one of 'a', 'b'" and docs["size"].default == 3
