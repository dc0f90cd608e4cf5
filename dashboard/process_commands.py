"""Who may read processes' command lines on the node pages.

Secrets on command lines are already hidden on the node (workers/sampler/redact.py), for
everyone. Command lines still say a lot about what others run, so once roles exist only
operators and admins will see them: the role check belongs in ``may_see_command_lines``, and
whatever hands a sample to a viewer passes it through ``for_viewer``."""

from __future__ import annotations

import copy
from typing import Any


def may_see_command_lines(user: Any) -> bool:
    """Every logged-in user today; operators and admins only once roles exist."""
    return bool(user is not None and user.is_authenticated)


def for_viewer(user: Any, sample: dict[str, Any]) -> dict[str, Any]:
    """A node sample (``NodeSample.to_json()``) as ``user`` may see it: unchanged, or a copy with
    every process's ``command`` set to None (top host processes and GPU processes)."""
    if may_see_command_lines(user):
        return sample
    hidden = copy.deepcopy(sample)
    top = (hidden.get("host") or {}).get("top_processes") or {}
    rows = [*top.get("by_cpu", ()), *top.get("by_rss", ())]
    for gpu in hidden.get("gpus") or ():
        rows.extend(gpu.get("processes") or ())
    for row in rows:
        row["command"] = None
    return hidden
