from django.apps import AppConfig


class AiChatConfig(AppConfig):
    name = "ai_chat"
    verbose_name = "AI chat"
