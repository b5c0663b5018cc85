"""A request's WorkflowExecution name (issue 17.1): its own, valid, and never a namesake's."""

from __future__ import annotations

import re
import uuid

from hypothesis import given
from hypothesis import strategies as st

from orchestrator.view import owned_by, workflow_execution_name

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_label = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")
names = st.lists(_label, min_size=1, max_size=8).map(".".join).filter(lambda n: len(n) <= 253)
uids = st.uuids().map(str)


@given(names, uids)
def test_the_name_is_a_dns_subdomain_of_at_most_253_characters(name, uid):
    wfe = workflow_execution_name(name, uid)
    assert len(wfe) <= 253 and DNS_SUBDOMAIN.match(wfe), wfe
    assert wfe == workflow_execution_name(name, uid), "re-creating it is idempotent"


@given(names, uids, uids)
def test_a_namesake_request_gets_another_name(name, uid, other):
    if uid != other:
        assert workflow_execution_name(name, uid) != workflow_execution_name(name, other)


def test_the_name_starts_with_the_request_name_and_cuts_a_long_one_cleanly():
    uid = str(uuid.uuid4())
    assert workflow_execution_name("rr-1", uid).startswith("rr-1-")
    long = "a" * 241 + ".b" + "c" * 10
    assert workflow_execution_name(long, uid) == "a" * 241 + "-" + workflow_execution_name("x", uid)[2:]


def test_only_the_controller_owner_with_the_requests_uid_owns():
    def obj(*owners):
        return {"metadata": {"ownerReferences": list(owners)}}

    assert owned_by(obj({"uid": "u1", "controller": True}), "u1")
    assert not owned_by(obj({"uid": "u1"}), "u1"), "not the controller"
    assert not owned_by(obj({"uid": "u0", "controller": True}), "u1"), "a namesake's"
    assert not owned_by(obj(), "u1") and not owned_by(obj({"uid": "u1", "controller": True}), None)
