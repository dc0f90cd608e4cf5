"""The perfmon Django app: models, views, forms, WebSocket consumers, REST API and admin."""
