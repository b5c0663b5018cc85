"""`kubectl kubernaut` (SPEC 9): why a RemediationRequest waits, what waits for a human, and the annotations that
acknowledge or unblock.

- `cli`: flags as kubectl has them, the verbs, one-line errors, exit codes.
- `cluster`: the only I/O: the kubeconfig, the API calls the plugin makes (listed in the module, checked against the
  kubernaut-viewer and kubernaut-operator ClusterRoles by the tests), errors turned into one line.
- `report`: pure: the JSON documents of each verb from what was read (routing is the orchestrator's own code).
- `render`: the human tables, coloured only on a terminal.
"""
