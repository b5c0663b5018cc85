"""Issue 17.5: the status the orchestrator writes fits the CRD by construction."""

from __future__ import annotations

from orchestrator.reconciler import RemediationReconciler
from shared.models import RemediationPhase, RemediationRequestStatus


def test_free_text_is_cut_to_the_crds_bounds_and_the_result_validates():
    status = RemediationRequestStatus(phase=RemediationPhase.FAILED)
    # As the reconciler builds a status: by assignment, which the model does not validate.
    status.message, status.block_message, status.failure_reason = "m" * 40_000, "b" * 40_000, "R" * 2_000
    status.blocking_workflow_execution = "n" * 63 + "/" + "w" * 253
    body = RemediationReconciler._dump(status)
    assert len(body["message"]) == len(body["blockMessage"]) == 32768 and body["message"].endswith("...")
    assert len(body["failureReason"]) == 1024
    RemediationRequestStatus.model_validate(body)
