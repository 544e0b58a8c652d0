import os
from importlib import import_module

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "pacsshare.settings")
application = get_wsgi_application()

# Import the URLconf, and the views it imports (pydicom, pynetdicom...), as
# each worker starts rather than during its first request (about a second).
import_module(settings.ROOT_URLCONF)
