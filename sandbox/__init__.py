"""A faithful stand-in for kube-apiserver, for tests and the local demo. The controllers never import it.

Public surface: `Sandbox` and `SandboxConfig` (sandbox.server), `running_sandbox` (sandbox.testing),
`SandboxAdmin` and `AsyncSandboxAdmin` (sandbox.client). See sandbox/README.md.
"""
