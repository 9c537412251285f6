"""The Django peer: database sessions, Argon2 with gatehouse's parameters, the same two routes.

Run by benches/peers/run.py as `gunicorn peer:application` with PEER_DB naming the SQLite file.
"""
import os

import django
from django.conf import settings
from django.contrib.auth.hashers import Argon2PasswordHasher
from django.core.wsgi import get_wsgi_application
from django.db import connection
from django.http import HttpResponse
from django.urls import path
from django.utils.html import escape
from django.views.decorators.csrf import csrf_exempt


class Argon2Policy(Argon2PasswordHasher):
    """argon2id, m=19456 KiB, t=2, p=1: the parameters gatehouse hashes with."""

    time_cost = 2
    memory_cost = 19456
    parallelism = 1


@csrf_exempt  # gatehouse's login checks a CSRF token too, but it costs an HMAC, not a query
def login(request):
    from django.contrib.auth.hashers import check_password

    with connection.cursor() as c:
        c.execute("SELECT id, password_hash FROM users WHERE email = %s",
                  [request.POST.get("email", "").strip().lower()])
        row = c.fetchone()
    if row is None or not check_password(request.POST.get("password", ""), row[1]):
        return HttpResponse("Login details incorrect", status=422)
    request.session.cycle_key()
    request.session["user_id"] = row[0]
    return _see_other("/clientarea")


def _see_other(to):
    r = HttpResponse(status=303)
    r["Location"] = to
    return r


def clientarea(request):
    user_id = request.session.get("user_id")
    if not user_id:
        return _see_other("/login")
    with connection.cursor() as c:
        c.execute("SELECT first_name, last_name, email FROM users WHERE id = %s", [user_id])
        first, last, email = c.fetchone()
        c.execute("SELECT c.id, c.name FROM memberships m JOIN clients c ON c.id = m.client_id "
                  "WHERE m.user_id = %s ORDER BY c.id", [user_id])
        clients = c.fetchall()
    items = "".join(f"<li>{escape(name)} (#{cid})</li>" for cid, name in clients)
    return HttpResponse(f"<!doctype html><html><head><title>Client area</title></head><body>"
                        f"<h1>Welcome, {escape(first)} {escape(last)}</h1><p>{escape(email)}</p>"
                        f"<ul>{items}</ul></body></html>")


settings.configure(
    DEBUG=False,
    ALLOWED_HOSTS=["*"],
    SECRET_KEY=os.environ.get("PEER_SECRET", "bench-only-secret-key-not-for-production-0123456789"),
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=["django.contrib.contenttypes", "django.contrib.auth", "django.contrib.sessions"],
    MIDDLEWARE=["django.contrib.sessions.middleware.SessionMiddleware",
                "django.middleware.csrf.CsrfViewMiddleware"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["PEER_DB"]}},
    SESSION_ENGINE="django.contrib.sessions.backends.db",
    PASSWORD_HASHERS=[f"{__name__}.Argon2Policy"],
    USE_TZ=True,
)
django.setup()
urlpatterns = [path("login", login), path("clientarea", clientarea)]
application = get_wsgi_application()
