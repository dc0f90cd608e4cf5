"""The Celery task names the Django side sends. Actions send tasks by these names after commit and
never import ``workers.tasks``, so imports flow one way: workers.tasks -> dashboard -> engine.
A test checks that every name here is a task the workers register."""

RUN_JOB = "perfmon.run_job"
VALIDATE_MODEL_VERSION = "perfmon.validate_model_version"
DELIVER_NOTIFICATION = "perfmon.deliver_notification"
PROBE_DEPLOYMENT = "perfmon.probe_deployment"
