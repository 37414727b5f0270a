"""The job type registry: registration rules, discovery, schemas."""

from __future__ import annotations

import sys
import textwrap

import pytest
from rest_framework import serializers

from jobs.exceptions import DuplicateJobType, UnknownJobType
from jobs.registry import JobType, Registry, _import_jobtypes, registry


def make_type(name: str) -> type[JobType]:
    class Sample(JobType):
        """A sample type."""

        class Params(serializers.Serializer):
            size = serializers.IntegerField(min_value=1)

        def run(self, ctx, params):
            return params["size"]

    Sample.name = name
    return Sample


def test_register_and_get():
    reg = Registry()
    cls = reg.register(make_type("sample"))
    assert reg.get("sample") is cls
    assert reg.names() == ["sample"]
    assert cls.get_description() == "A sample type."


def test_register_twice_with_another_class_is_an_error():
    reg = Registry()
    reg.register(make_type("sample"))
    with pytest.raises(DuplicateJobType):
        reg.register(type("Other", (make_type("sample"),), {"__module__": "elsewhere"}))


def test_register_needs_a_name_and_a_jobtype():
    reg = Registry()
    with pytest.raises(TypeError):
        reg.register(make_type(""))
    with pytest.raises(TypeError):
        reg.register(object)  # type: ignore[arg-type]


def test_unknown_type_names_the_field():
    with pytest.raises(UnknownJobType) as info:
        Registry().get("nope")
    assert "type" in info.value.errors


def test_reset_forgets_everything():
    reg = Registry()
    reg.register(make_type("sample"))
    reg.reset()
    assert reg.names() == []


def test_params_schema_is_json_schema():
    schema = make_type("sample").params_schema()
    assert schema["type"] == "object"
    assert schema["properties"]["size"] == {"type": "integer", "minimum": 1}
    assert schema["required"] == ["size"]
    assert schema["additionalProperties"] is False


def test_builtins_are_registered():
    assert {"fibonacci", "pi", "countdown"} <= set(registry.names())


def test_one_new_module_in_an_apps_jobtypes_package_is_discovered(tmp_path, monkeypatch):
    """Discovery imports every module of an app's ``jobtypes`` package: one new file is enough."""
    package = tmp_path / "someapp" / "jobtypes"
    package.mkdir(parents=True)
    (tmp_path / "someapp" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "square.py").write_text(
        textwrap.dedent(
            """
            from jobs.registry import JobType, registry

            @registry.register
            class Square(JobType):
                name = "unit_square"
                def run(self, ctx, params):
                    return 4
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        _import_jobtypes("someapp")
        assert "unit_square" in registry
    finally:
        registry._types.pop("unit_square", None)
        for name in [m for m in sys.modules if m.startswith("someapp")]:
            del sys.modules[name]
