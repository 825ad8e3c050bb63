from typing import Any

from django import template
from django.utils.safestring import SafeString

from apps.assist.rendering import explanation_html
from apps.assist.services import explain_enabled

register = template.Library()


@register.filter(name="explanation_html")
def explanation_html_filter(text: str) -> SafeString:
    return explanation_html(text)


@register.inclusion_tag("assist/_explain_button.html")
def explain_button(action_id: str) -> dict[str, Any]:
    """The Explain button and its result area; renders nothing without ANTHROPIC_API_KEY."""
    return {"action_id": action_id, "explain_enabled": explain_enabled()}
