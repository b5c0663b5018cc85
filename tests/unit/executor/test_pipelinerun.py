import hashlib

from executor.pipelinerun import build_pipeline_run, pipeline_run_name, workflow_execution_of
from shared.models import PipelineRun, WorkflowExecution
from tests import factories


def wfe(**spec_extra):
    obj = factories.workflow_execution("wfe-1", "team-a", target="prod/deployment/web", parameters={"B": "2", "A": "1"})
    obj["metadata"]["uid"] = "uid-1"
    obj["spec"].update(spec_extra)
    return WorkflowExecution.from_k8s(obj)


def test_name_is_a_per_target_lock():
    assert pipeline_run_name("prod/deployment/web") == "wfe-" + hashlib.sha256(b"prod/deployment/web").hexdigest()[:16]
    assert pipeline_run_name("prod/deployment/web") != pipeline_run_name("prod/deployment/api")


def test_pipeline_run_follows_the_spec():
    run = build_pipeline_run(
        wfe(executionConfig={"timeout": "30m"}),
        namespace="kubernaut-workflows",
        default_service_account="kubernaut-workflow-runner",
    )
    assert run["metadata"]["namespace"] == "kubernaut-workflows"
    assert run["metadata"]["labels"] == {
        "kubernaut.ai/workflow-execution": "wfe-1",
        "kubernaut.ai/workflow-id": "restart-pods",
        "kubernaut.ai/target": "prod_deployment_web",
    }
    assert run["metadata"]["annotations"]["kubernaut.ai/target"] == "prod/deployment/web"
    assert run["spec"]["pipelineRef"] == {
        "resolver": "bundles",
        "params": [
            {"name": "bundle", "value": "registry.example.com/workflows/restart-pods:v1"},
            {"name": "name", "value": "workflow"},
            {"name": "kind", "value": "pipeline"},
        ],
    }
    assert run["spec"]["params"] == [
        {"name": "A", "value": "1"},
        {"name": "B", "value": "2"},
        {"name": "TARGET_RESOURCE", "value": "prod/deployment/web"},
    ]
    assert run["spec"]["taskRunTemplate"] == {"serviceAccountName": "kubernaut-workflow-runner"}
    assert run["spec"]["timeouts"] == {"pipeline": "30m"}
    assert workflow_execution_of(run) == ("team-a/wfe-1", "uid-1")
    PipelineRun.from_k8s(run)  # and it parses as a PipelineRun


def test_service_account_prefers_execution_config_then_workflow_then_default():
    workflow_sa = wfe(workflowRef={"workflowId": "w", "executionBundle": "r.io/w:1", "serviceAccountName": "wf-sa"})
    run = build_pipeline_run(workflow_sa, namespace="n", default_service_account="default-sa")
    assert run["spec"]["taskRunTemplate"]["serviceAccountName"] == "wf-sa"
    config_sa = wfe(executionConfig={"serviceAccountName": "cfg-sa"})
    assert build_pipeline_run(config_sa, namespace="n", default_service_account="d")["spec"]["taskRunTemplate"] == {
        "serviceAccountName": "cfg-sa"
    }
    assert "timeouts" not in build_pipeline_run(wfe(), namespace="n", default_service_account="d")["spec"]
