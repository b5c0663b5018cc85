"""The executor: runs one Tekton PipelineRun per WorkflowExecution and records the outcome."""
