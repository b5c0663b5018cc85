"""Code both controllers share: CRD models, the canonical target, backoff, settings and the controller runtime."""
