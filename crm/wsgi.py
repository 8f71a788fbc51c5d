"""The WSGI application (gunicorn crm.wsgi): production settings unless DJANGO_SETTINGS_MODULE says otherwise."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings.production")

application = get_wsgi_application()
