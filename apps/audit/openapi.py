from typing import Any

from apps.actions.propose import proposal_schema_components
from apps.audit.schemas import DATA_SCHEMAS, json_schema_for_docs


def add_event_schemas(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """Publishes the msgspec schemas (event envelope, each type's data, a proposal) as components."""
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components.update(json_schema_for_docs())
    components.update(proposal_schema_components())
    envelope = components.get("EventIn")
    if envelope:
        lines = [
            f"- `{event_type}`: " + (f"see `{schema.__name__}`" if schema else "free-form object")
            for event_type, schema in DATA_SCHEMAS.items()
        ]
        envelope["description"] = "One audit event. `data` depends on `type`:\n" + "\n".join(lines)
    return result
