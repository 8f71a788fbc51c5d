"""The API fuzz (test_api_fuzz.py) reaches every operation the server routes: it fuzzes the
published schema, so an operation the schema leaves out (`extend_schema(exclude=True)`, a view
outside the generator) escapes it. Each one left out is listed here with the reason."""

from drf_spectacular.generators import EndpointEnumerator, SchemaGenerator

METHODS = ("get", "post", "put", "patch", "delete")

# (method, path) -> why the schema, and so the fuzz, leaves it out.
LEFT_OUT = {
    ("GET", "/api/v1/schema/"): "The schema itself (SERVE_INCLUDE_SCHEMA is off): the fuzz reads it to make the rest.",
    ("GET", "/api/v1/docs/"): "Swagger UI, an HTML page over the schema; test_schema.py checks it.",
    ("POST", "/api/v1/campaign-executions/"): (
        "The router's create on the send ledger, which only the engine writes: always a 405 "
        "(test_executions_api.py checks it); the view's POST is for resolve/."
    ),
}


def routed_operations() -> set[tuple[str, str]]:
    """Every (method, path) a DRF view answers under /api/v1/, in the schema's spelling of paths."""
    return {
        (method, path.replace("{pk}", "{id}"))
        for path, _, method, _ in EndpointEnumerator().get_api_endpoints()
        if path.startswith("/api/v1/")
    }


def schema_operations() -> set[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return {(method.upper(), path) for path, item in schema["paths"].items() for method in item if method in METHODS}


def test_every_routed_operation_is_in_the_schema_or_left_out_with_a_reason():
    routed, published = routed_operations(), schema_operations()

    assert routed - published == set(LEFT_OUT)
    assert published <= routed
    assert all(reason.strip() for reason in LEFT_OUT.values())
