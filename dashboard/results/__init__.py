"""What people see of a finished benchmark: normalized runs, CSV export, comparisons, regressions.

Job.result comes from the harness and grows over time, so everything here reads it through
dashboard.results.runs, which tolerates missing keys instead of raising."""
