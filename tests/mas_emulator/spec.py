"""Access to the MAS reference material beside the repository, for tests.

CI checks out the repository with `shared/` next to it, so the material is at
<repository>/../shared: the OpenAPI description of the MAS 1.22 admin API in
mas/spec.json and real recorded exchanges in mas-real/NNN-*.json.
"""

import json
from functools import lru_cache
from pathlib import Path

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

REPOSITORY = Path(__file__).resolve().parents[2]
SHARED = REPOSITORY.parent / "shared"
SPEC_URI = "urn:mas-admin-api-spec"


def shared_dir() -> Path:
    """Return the shared reference directory, or raise FileNotFoundError naming where it should be."""
    if not (SHARED / "mas" / "spec.json").is_file() or not (SHARED / "mas-real").is_dir():
        raise FileNotFoundError(
            f"MAS reference material not found: expected {SHARED}/mas/spec.json and {SHARED}/mas-real/ "
            "beside the repository checkout; check out the shared/ folder next to the repository"
        )
    return SHARED


def recordings() -> list[Path]:
    """Return the recorded exchange files in their recorded order."""
    return sorted((shared_dir() / "mas-real").glob("[0-9][0-9][0-9]-*.json"))


@lru_cache(maxsize=1)
def load_spec() -> dict:
    return json.loads((shared_dir() / "mas" / "spec.json").read_text())


@lru_cache(maxsize=None)
def _validator(schema_name: str) -> jsonschema.Draft202012Validator:
    spec = load_spec()
    if schema_name not in spec["components"]["schemas"]:
        raise KeyError(f"schema {schema_name!r} is not in the spec's components")

    # OpenAPI 3.1 schemas are JSON Schema 2020-12, and "#/components/..." refs
    # resolve against the spec document registered under SPEC_URI.
    registry = Registry().with_resource(SPEC_URI, Resource.from_contents(spec, default_specification=DRAFT202012))
    schema = {"$ref": f"{SPEC_URI}#/components/schemas/{schema_name}"}
    return jsonschema.Draft202012Validator(schema, registry=registry, format_checker=jsonschema.FormatChecker())


def validate(instance: object, schema_name: str) -> None:
    """Raise jsonschema.ValidationError unless `instance` matches the named component schema."""
    _validator(schema_name).validate(instance)


def response_schema(method: str, path: str, status: int) -> str | None:
    """Return the component schema of an admin API JSON response, or None if there is none."""
    if not path.startswith("/api/admin/v1/user-registration-tokens"):
        return None
    if status >= 400:
        return "ErrorResponse"
    if path == "/api/admin/v1/user-registration-tokens" and method in ("GET", "HEAD"):
        return "PaginatedResponse_for_UserRegistrationToken"
    return "SingleResponse_for_UserRegistrationToken"
