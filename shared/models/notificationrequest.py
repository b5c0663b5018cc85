"""NotificationRequest (SPEC 2): created by the orchestrator, delivered by someone else."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import Field

from shared.apiresource import ApiResource
from shared.models._base import K8sModel, KubeObject, ObjectReference
from shared.models.remediationrequest import GROUP, VERSION


class NotificationType(StrEnum):
    ESCALATION = "escalation"
    SIMPLE = "simple"
    STATUS_UPDATE = "status-update"
    APPROVAL = "approval"
    MANUAL_REVIEW = "manual-review"


class NotificationPriority(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class NotificationRequestSpec(K8sModel):
    """Immutable after creation."""

    remediation_request_ref: ObjectReference
    type: NotificationType
    priority: NotificationPriority
    subject: str = Field(min_length=1, max_length=500)
    body: str | None = Field(None, max_length=32768)
    channels: Annotated[list[Annotated[str, Field(max_length=253)]], Field(max_length=16)] | None = None
    metadata: Annotated[dict[str, Annotated[str, Field(max_length=4096)]], Field(max_length=64)] | None = None


class NotificationRequest(KubeObject):
    """A notice for humans (escalation, manual review, status update), one per incident."""

    RESOURCE: ClassVar[ApiResource] = ApiResource(GROUP, VERSION, "NotificationRequest", "notificationrequests")

    spec: NotificationRequestSpec
    # Delivery status belongs to the delivering controller; we keep whatever it writes.
    status: (
        Annotated[dict[str, Any], Field(json_schema_extra={"x-kubernetes-preserve-unknown-fields": True})] | None
    ) = None
