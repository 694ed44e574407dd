from django.apps import AppConfig


class DevtoolsConfig(AppConfig):
    # Commands only: no models, no URLs. Installed whatever DEBUG says, because the bench
    # seeds its databases under production settings (bench/servers.py: DEBUG off).
    name = "devtools"
