"""The deployment docs name things that exist."""

import re

from tests.deploy.manifests import MANIFESTS, OVERLAYS, ROOT, built, of_kind

README = (ROOT / "README.md").read_text()
MANIFESTS_README = (MANIFESTS / "README.md").read_text()


def test_the_manifests_readme_describes_every_overlay_and_directory():
    for name in OVERLAYS:
        assert f"`{name}`" in MANIFESTS_README or f"{name}/" in MANIFESTS_README, name
    for directory in (p.name for p in MANIFESTS.iterdir() if p.is_dir()):
        assert f"{directory}/" in MANIFESTS_README, directory


def test_the_readme_points_at_the_kind_targets_and_the_deployment_shapes():
    assert "## Run it on kind" in README and "## Deployment shapes" in README
    assert "make kind-up" in README and "make run-local" in README and "manifests/README.md" in README


def test_the_port_forward_in_the_readme_reaches_a_metrics_service_in_every_overlay(objects):
    (namespace, service, port) = re.findall(r"kubectl -n (\S+) port-forward svc/(\S+) (\d+)", README)[0]
    (target,) = [s for s in of_kind(objects, "Service") if s["metadata"]["name"] == service]
    assert target["metadata"]["namespace"] == namespace
    assert int(port) in {p["port"] for p in target["spec"]["ports"]}


def test_the_alert_table_lists_every_alert():
    (rule,) = of_kind(built("production"), "PrometheusRule")
    for group in rule["spec"]["groups"]:
        for alert in group["rules"]:
            assert f"`{alert['alert']}`" in MANIFESTS_README, alert["alert"]
