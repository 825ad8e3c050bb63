from django.apps import AppConfig


class ChatopsConfig(AppConfig):
    name = "apps.chatops"
    label = "chatops"
    verbose_name = "Chat approvals (Slack)"
