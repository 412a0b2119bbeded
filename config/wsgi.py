import gc
import importlib
import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()

# Load the URL conf (and with it every view) now rather than on the first request, then move all
# that was loaded out of the garbage collector's sight: it lives as long as the process, and a
# full collection walking its ~150 000 objects stalled a request for ~60 ms (bench_gate.py).
importlib.import_module(settings.ROOT_URLCONF)
gc.freeze()
