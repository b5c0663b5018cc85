"""Setting a condition the way the Kubernetes API conventions ask (meta.SetStatusCondition)."""

from __future__ import annotations

import re
from datetime import datetime

from shared.models._base import Condition, ConditionStatus

_REASON_UNSAFE = re.compile(r"[^A-Za-z0-9_,:]")


def condition_reason(text: str) -> str:
    """`text` in the CamelCase form a condition reason must have; reasons from other objects may not be."""
    reason = _REASON_UNSAFE.sub("", text)[:1024].rstrip(",:")
    return reason if reason[:1].isalpha() else "Unknown"


def set_condition(
    conditions: list[Condition] | None,
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    now: datetime,
    observed_generation: int | None = None,
) -> list[Condition]:
    """Return the list with `type_` set; lastTransitionTime moves only when the status changes."""
    reason, message = condition_reason(reason), message[:32768]
    result = list(conditions or [])
    for index, existing in enumerate(result):
        if existing.type == type_:
            changed = existing.status != status
            result[index] = existing.model_copy(
                update={
                    "status": status,
                    "reason": reason,
                    "message": message,
                    "observed_generation": observed_generation,
                    "last_transition_time": now if changed else existing.last_transition_time,
                }
            )
            return result
    result.append(
        Condition(
            type=type_,
            status=status,
            reason=reason,
            message=message,
            last_transition_time=now,
            observed_generation=observed_generation,
        )
    )
    return result
