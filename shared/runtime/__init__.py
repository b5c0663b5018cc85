"""The controller runtime: client, informer, store and indexes, work queue, leader election, Events, probes.

Knows Kubernetes; knows nothing about remediation.
"""
