import django_filters

from apps.audit.models import Event, EventType


class EventFilter(django_filters.FilterSet):
    agent = django_filters.CharFilter(field_name="agent__slug", help_text="Agent slug.")
    # distinct=False: the default DISTINCT would force a sort of every matching row.
    type = django_filters.MultipleChoiceFilter(choices=EventType.choices, distinct=False)
    action_id = django_filters.CharFilter()
    incident_id = django_filters.CharFilter()
    since = django_filters.IsoDateTimeFilter(
        field_name="ts", lookup_expr="gte", help_text="ISO 8601 time, inclusive."
    )
    until = django_filters.IsoDateTimeFilter(
        field_name="ts", lookup_expr="lt", help_text="ISO 8601 time, exclusive."
    )

    class Meta:
        model = Event
        fields = ["agent", "type", "action_id", "incident_id", "since", "until"]
