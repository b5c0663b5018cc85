"""Fault injection through the admin API: what a client sees when the API server misbehaves.

Only the sandbox can be told to misbehave, so every test here is `sandbox_only`.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from tests.contract import kube
from tests.contract.kube import WatchStream

pytestmark = [pytest.mark.sandbox_only, pytest.mark.usefixtures("crds")]


@pytest.fixture(autouse=True)
def no_faults_left(sandbox):
    yield
    sandbox.admin.clear_faults()


async def latest(api, namespace) -> str:
    version: str = (await kube.get(api, kube.widget_path(namespace))).body["metadata"]["resourceVersion"]
    return version


async def test_dropped_watches_end_abruptly_and_a_new_watch_works(api, sandbox, namespace):
    async with WatchStream(
        api, kube.widget_path(namespace), {"resourceVersion": await latest(api, namespace)}
    ) as stream:
        sandbox.admin.wait_for_watches("widgets")
        assert sandbox.admin.drop_watches() >= 1
        with pytest.raises((aiohttp.ClientError, ConnectionError)):
            event = await stream.next()
            assert event is None  # a drop may also read as the end of the body
            raise ConnectionError("stream ended")
    async with WatchStream(
        api, kube.widget_path(namespace), {"resourceVersion": await latest(api, namespace)}
    ) as again:
        assert again.status == 200


async def test_gracefully_dropped_watches_end_like_a_timeout(api, sandbox, namespace):
    async with WatchStream(
        api, kube.widget_path(namespace), {"resourceVersion": await latest(api, namespace)}
    ) as stream:
        sandbox.admin.wait_for_watches("widgets")
        sandbox.admin.drop_watches(graceful=True)
        assert await stream.next() is None


async def test_the_next_watch_is_answered_with_410_and_the_one_after_is_not(api, sandbox, namespace):
    sandbox.admin.expire_next_watches(1, resource="widgets")
    version = await latest(api, namespace)
    async with WatchStream(api, kube.widget_path(namespace), {"resourceVersion": version}) as first:
        events = await first.rest()
    async with WatchStream(
        api, kube.widget_path(namespace), {"resourceVersion": version, "timeoutSeconds": "1"}
    ) as second:
        later = await second.rest()
    assert [(e["type"], e["object"]["code"], e["object"]["reason"]) for e in events] == [("ERROR", 410, "Expired")]
    assert all(event["type"] != "ERROR" for event in later)


async def test_an_expiry_for_another_user_leaves_our_watches_alone(api, sandbox, namespace):
    sandbox.admin.expire_next_watches(1, resource="widgets", user="someone-else")
    async with WatchStream(
        api, kube.widget_path(namespace), {"resourceVersion": await latest(api, namespace), "timeoutSeconds": "1"}
    ) as stream:
        events = await stream.rest()
    assert all(event["type"] != "ERROR" for event in events)
    assert [entry["fired"] for entry in sandbox.admin.faults()["armed"]] == [0]


async def test_watches_expire_for_a_while(api, sandbox, namespace):
    fault = sandbox.admin.expire_watches_for(60, resource="widgets")
    for _ in range(3):
        async with WatchStream(api, kube.widget_path(namespace), {}) as stream:
            assert [event["type"] for event in await stream.rest()] == ["ERROR"]
    armed = {entry["id"]: entry for entry in sandbox.admin.faults()["armed"]}
    assert armed[fault]["fired"] == 3


async def test_the_next_creates_fail_with_500_then_succeed(api, sandbox, namespace, unique):
    fault = sandbox.admin.fail_requests(code=500, count=2, verb="create", resource="widgets")
    body = kube.widget(unique, namespace)
    first = await kube.request(api, "POST", kube.widget_path(namespace), body=body)
    second = await kube.request(api, "POST", kube.widget_path(namespace), body=body)
    listed = await kube.get(api, kube.widget_path(namespace))
    third = await kube.request(api, "POST", kube.widget_path(namespace), body=body)
    assert (first.status, first.reason, second.status) == (500, "InternalError", 500)
    assert listed.status == 200
    assert third.status == 201
    spent = {entry["id"]: entry for entry in sandbox.admin.faults()["spent"]}
    assert spent[fault]["fired"] == 2


async def test_429_carries_retry_after(api, sandbox, namespace):
    sandbox.admin.fail_requests(code=429, retry_after=7, verb="list", resource="widgets")
    reply = await kube.get(api, kube.widget_path(namespace))
    assert reply.status == 429
    assert reply.reason == "TooManyRequests"
    assert reply.headers["Retry-After"] == "7"
    assert reply.body["details"]["retryAfterSeconds"] == 7


async def test_an_injected_403_reads_like_a_forbidden_answer_with_its_reason_why(api, sandbox, namespace, unique):
    sandbox.admin.fail_requests(code=403, verb="create", resource="widgets", message="exceeded quota: widgets")
    created = await kube.request(api, "POST", kube.widget_path(namespace), body=kube.widget(unique, namespace))
    sandbox.admin.fail_requests(code=403, verb="get", resource="widgets")
    read = await kube.get(api, kube.widget_path(namespace, unique))
    assert (created.status, created.reason) == (403, "Forbidden")
    assert created.body["message"] == "widgets.contract.kubernaut.ai is forbidden: exceeded quota: widgets"
    assert created.body["details"]["kind"] == "widgets"
    assert (read.status, read.reason) == (403, "Forbidden")
    assert read.body["message"].startswith(f'widgets.contract.kubernaut.ai "{unique}" is forbidden: ')


async def test_an_injected_409_on_update_is_a_conflict(api, sandbox, namespace, unique):
    created = await kube.create(api, kube.widget_path(namespace), kube.widget(unique, namespace))
    sandbox.admin.fail_requests(code=409, verb="update", resource="widgets", name=unique)
    reply = await kube.request(api, "PUT", kube.widget_path(namespace, unique), body=created)
    assert reply.status == 409
    assert reply.reason == "Conflict"


async def test_a_failure_after_the_write_loses_the_response_not_the_write(api, sandbox, namespace, unique):
    sandbox.admin.fail_requests(code=500, verb="create", resource="widgets", when="after")
    reply = await kube.request(api, "POST", kube.widget_path(namespace), body=kube.widget(unique, namespace))
    assert reply.status == 500
    assert (await kube.get(api, kube.widget_path(namespace, unique))).status == 200


async def test_failures_match_the_subresource(api, sandbox, namespace, unique):
    await kube.create(api, kube.widget_path(namespace), kube.widget(unique, namespace))
    sandbox.admin.fail_requests(code=503, verb="patch", resource="widgets", subresource="status")
    spec = await kube.merge_patch(api, kube.widget_path(namespace, unique), {"spec": {"size": 1}})
    status = await kube.merge_patch(api, kube.widget_path(namespace, unique, "status"), {"status": {"phase": "Ready"}})
    assert (spec.status, status.status) == (200, 503)


async def test_latency_delays_matching_requests_until_cleared(api, sandbox, namespace):
    sandbox.admin.add_latency(0.3, verb="list", resource="widgets")
    started = time.monotonic()
    await kube.get(api, kube.widget_path(namespace))
    delayed = time.monotonic() - started
    sandbox.admin.clear_latency()
    started = time.monotonic()
    await kube.get(api, kube.widget_path(namespace))
    assert delayed >= 0.3
    assert time.monotonic() - started < 0.3


async def test_latency_outlasts_its_own_length(api, sandbox, namespace):
    sandbox.admin.add_latency(0.3, verb="list", resource="widgets")
    await kube.get(api, kube.widget_path(namespace))  # takes the delay, so the delay's length has passed
    started = time.monotonic()
    await kube.get(api, kube.widget_path(namespace))
    assert time.monotonic() - started >= 0.3
    assert [fault["kind"] for fault in sandbox.admin.faults()["armed"]] == ["latency"]


async def test_latency_lasting_a_while_disarms_itself(api, sandbox, namespace):
    sandbox.admin.add_latency(0.2, verb="list", resource="widgets", lasting=0.5)
    started = time.monotonic()
    await kube.get(api, kube.widget_path(namespace))
    assert time.monotonic() - started >= 0.2
    while sandbox.admin.faults()["armed"]:  # the fault's wall-clock lifetime runs out
        await asyncio.sleep(0.05)
    assert [fault["kind"] for fault in sandbox.admin.faults()["spent"]][-1:] == ["latency"]


async def test_a_watch_with_latency_gets_no_response_until_the_delay_is_over(api, sandbox, namespace):
    """Latency on watches stalls the response itself (status line and headers), as a hung server would."""
    sandbox.admin.add_latency(30, verb="watch", resource="widgets")
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.5):
            async with WatchStream(api, kube.widget_path(namespace), {"resourceVersion": await latest(api, namespace)}):
                pass


async def test_hung_watches_stay_open_silent_then_deliver_when_released(api, sandbox, namespace, unique):
    async with WatchStream(
        api, kube.widget_path(namespace), {"resourceVersion": await latest(api, namespace)}
    ) as stream:
        sandbox.admin.wait_for_watches("widgets")
        sandbox.admin.hang_watches()
        await kube.create(api, kube.widget_path(namespace), kube.widget(unique, namespace))
        with pytest.raises(TimeoutError):
            await stream.next(timeout=0.5)
        assert sandbox.admin.state()["watchesHung"] is True
        sandbox.admin.release_watches()
        event = await stream.next()
    assert (event["type"], kube.named(event)) == ("ADDED", unique)


async def test_a_restart_closes_connections_and_keeps_the_state(api, sandbox, namespace, unique):
    await kube.create(api, kube.widget_path(namespace), kube.widget(unique, namespace))
    async with WatchStream(
        api, kube.widget_path(namespace), {"resourceVersion": await latest(api, namespace)}
    ) as stream:
        sandbox.admin.wait_for_watches("widgets")
        sandbox.admin.restart()
        with pytest.raises((aiohttp.ClientError, ConnectionError)):
            if await stream.next() is None:
                raise ConnectionError("stream ended")
    assert (await kube.get(api, kube.widget_path(namespace, unique))).status == 200


async def test_down_refuses_connections_until_it_is_up_again(api, sandbox, namespace, unique):
    await kube.create(api, kube.widget_path(namespace), kube.widget(unique, namespace))
    sandbox.admin.down(60)
    assert sandbox.admin.state()["listening"] is False
    with pytest.raises(aiohttp.ClientConnectorError):
        await kube.get(api, kube.widget_path(namespace, unique))
    sandbox.admin.up()
    assert (await kube.get(api, kube.widget_path(namespace, unique))).status == 200


async def test_down_for_a_while_comes_back_by_itself(api, sandbox, namespace):
    sandbox.admin.down(0.2)

    async def serving() -> bool:
        try:
            return (await kube.get(api, kube.widget_path(namespace))).status == 200
        except aiohttp.ClientError:
            return False

    await kube.eventually(serving, timeout=10)


async def test_clear_faults_disarms_everything(api, sandbox, namespace):
    sandbox.admin.fail_requests(code=500, count=100, resource="widgets")
    sandbox.admin.hang_watches(60)
    sandbox.admin.clear_faults()
    state = sandbox.admin.state()
    assert state["faults"]["armed"] == []
    assert state["watchesHung"] is False
    assert (await kube.get(api, kube.widget_path(namespace))).status == 200


async def test_the_async_admin_client_does_the_same(api, sandbox, namespace):
    admin = sandbox.admin.aio
    await admin.fail_requests(code=500, verb="list", resource="widgets")
    reply = await kube.get(api, kube.widget_path(namespace))
    await admin.clear_faults()
    assert reply.status == 500
    assert (await admin.state())["validation"] is True


async def test_a_compacted_history_expires_a_continue_token(api, sandbox, namespace, unique):
    for index in range(3):
        await kube.create(api, kube.widget_path(namespace), kube.widget(f"{unique}-{index}", namespace))
    first = await kube.request(api, "GET", kube.widget_path(namespace), query={"limit": "1"})
    await kube.merge_patch(api, kube.widget_path(namespace, f"{unique}-0"), {"spec": {"size": 1}})
    sandbox.admin.compact_history()
    reply = await kube.request(
        api, "GET", kube.widget_path(namespace), query={"limit": "1", "continue": first.body["metadata"]["continue"]}
    )
    assert reply.status == 410
    assert reply.reason == "Expired"
    assert reply.body["message"].startswith("The provided continue parameter is too old")
    assert reply.body["metadata"]["continue"]  # an inconsistent continuation is offered
    rest = await kube.request(
        api, "GET", kube.widget_path(namespace), query={"continue": reply.body["metadata"]["continue"]}
    )
    assert rest.status == 200


async def test_watches_survive_latency_on_other_requests(api, sandbox, namespace, unique):
    sandbox.admin.add_latency(0.2, verb="create")
    async with WatchStream(
        api, kube.widget_path(namespace), {"resourceVersion": await latest(api, namespace)}
    ) as stream:
        await asyncio.gather(kube.create(api, kube.widget_path(namespace), kube.widget(unique, namespace)))
        event = await stream.next()
    assert kube.named(event) == unique
