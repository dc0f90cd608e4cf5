"""Alerting: rule targets, the evaluator's state machine, notification channels and the actions a
firing rule may take. Every write goes through a named do_* action."""
