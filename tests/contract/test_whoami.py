"""SelfSubjectReview (`kubectl auth whoami`, authentication.k8s.io/v1, GA in Kubernetes 1.28): a create-only
review of who the request's credentials are; nothing is stored, so it cannot be read back.

https://kubernetes.io/docs/reference/kubernetes-api/authentication-resources/self-subject-review-v1/
"""

from __future__ import annotations

from tests.contract import kube

PATH = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
REVIEW = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}


async def test_a_self_subject_review_answers_201_with_the_user(api):
    reply = await kube.request(api, "POST", PATH, body=REVIEW)
    assert reply.status == 201
    assert (reply.body["apiVersion"], reply.body["kind"]) == ("authentication.k8s.io/v1", "SelfSubjectReview")
    user = reply.body["status"]["userInfo"]
    assert isinstance(user["username"], str) and user["username"]
    assert "system:authenticated" in user["groups"]


async def test_a_self_subject_review_is_not_stored(api):
    assert (await kube.request(api, "GET", f"{PATH}/anything")).status in (404, 405)
    assert (await kube.request(api, "GET", PATH)).status in (404, 405)
