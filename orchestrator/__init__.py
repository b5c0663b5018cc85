"""The orchestrator: owns RemediationRequests and makes every routing decision."""
