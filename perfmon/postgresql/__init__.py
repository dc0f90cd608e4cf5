"""Django's PostgreSQL backend with a connection pool that answers at once while the server is down
(perfmon/postgresql/base.py). DATABASES ENGINE "perfmon.postgresql"."""
