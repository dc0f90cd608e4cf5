"""The perfmon engine: models, benchmarks and node sampling, free of Django and Celery."""
