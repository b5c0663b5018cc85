"""The chaos suite (SPEC 7): the whole system as processes under faults and load, then its invariants checked.

`plan` decides the load, `system` runs and watches the processes, `faults` injects, `load` plays the requests
and an operator, `recorder` witnesses every change and the audit log, `invariants` judges, `run` ties one run
together. `python -m tests.chaos` (`make chaos`) is the long soak; test_chaos.py the short one.
"""
