"""`python -m sandbox serve`: run the sandbox API server on 127.0.0.1 until Ctrl-C or SIGTERM.

`python -m sandbox tekton`: run the Tekton simulator against any API server (see sandbox/tekton.py).

`python -m sandbox demo`: the no-cluster demo (see sandbox/demo.py).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from sandbox import demo, tekton
from sandbox.kubeconfig import ADMIN_USER, write_kubeconfig
from sandbox.server import DEFAULT_CRDS, Sandbox, SandboxConfig
from sandbox.storage import DEFAULT_HISTORY_CAPACITY

DEFAULT_KUBECONFIG = Path(".sandbox/kubeconfig")


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="python -m sandbox", description="A Kubernetes API server for tests and demos.")
    commands = root.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the API on 127.0.0.1 and write a kubeconfig")
    serve.add_argument("--port", type=int, default=0, help="API port (default: any free port)")
    serve.add_argument("--admin-port", type=int, default=0, help="admin API port (default: any free port)")
    serve.add_argument(
        "--kubeconfig", type=Path, default=DEFAULT_KUBECONFIG, help=f"where to write it ({DEFAULT_KUBECONFIG})"
    )
    serve.add_argument(
        "--crds",
        type=Path,
        nargs="*",
        default=list(DEFAULT_CRDS),
        help="CRD files or directories to serve (default: manifests/crds and the Tekton fixtures)",
    )
    serve.add_argument(
        "--namespace", action="append", default=[], dest="namespaces", help="also create this namespace (repeatable)"
    )
    serve.add_argument("--no-validation", action="store_true", help="store custom resources as sent (no schema checks)")
    serve.add_argument(
        "--tls", action="store_true", help="serve HTTPS (a throw-away CA, written next to the kubeconfig as ca.crt)"
    )
    serve.add_argument(
        "--token",
        action="append",
        default=None,
        dest="tokens",
        metavar="TOKEN=USER",
        help="accept only these bearer tokens (repeatable; 401 for others); default: any token is its user",
    )
    serve.add_argument("--bookmark-interval", type=float, default=60.0, help="seconds between watch BOOKMARKs (60)")
    serve.add_argument(
        "--history-capacity",
        type=int,
        default=DEFAULT_HISTORY_CAPACITY,
        help=f"changes kept for watches and continue tokens ({DEFAULT_HISTORY_CAPACITY})",
    )
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    commands.add_parser("tekton", help="run the Tekton simulator (python -m sandbox tekton --help)", add_help=False)
    commands.add_parser("demo", help="the no-cluster demo (python -m sandbox demo --help)", add_help=False)
    return root


async def serve(arguments: argparse.Namespace) -> None:
    config = SandboxConfig(
        port=arguments.port,
        admin_port=arguments.admin_port,
        crds=tuple(arguments.crds),
        validation=not arguments.no_validation,
        bookmark_interval=arguments.bookmark_interval,
        history_capacity=arguments.history_capacity,
        namespaces=tuple(arguments.namespaces),
        tls=arguments.tls,
        tokens=_tokens(arguments.tokens),
    )
    sandbox = Sandbox(config)
    await sandbox.start()
    # The kubeconfig's credentials must be a token the sandbox accepts: the first one given, if any.
    token, user = (ADMIN_USER, ADMIN_USER) if config.tokens is None else config.tokens[0]
    path = write_kubeconfig(arguments.kubeconfig, sandbox.url, user, ca_pem=sandbox.ca_pem, token=token)
    print(f"sandbox API:   {sandbox.url}", flush=True)
    if sandbox.ca_pem is not None:
        ca_path = arguments.kubeconfig.parent / "ca.crt"
        ca_path.write_bytes(sandbox.ca_pem)
        print(f"sandbox CA:    {ca_path.resolve()}", flush=True)
    print(f"sandbox admin: {sandbox.admin_url}", flush=True)
    print(f"kubeconfig:    {path.resolve()}   (export KUBECONFIG={path.resolve()})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await sandbox.stop()
    print("sandbox stopped", flush=True)


def _tokens(values: list[str] | None) -> tuple[tuple[str, str], ...] | None:
    if values is None:
        return None
    pairs = []
    for value in values:
        token, _, user = value.partition("=")
        if not token or not user:
            raise SystemExit(f"python -m sandbox serve: --token {value!r}: expected TOKEN=USER")
        pairs.append((token, user))
    return tuple(pairs)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["tekton"]:
        return tekton.main(argv[1:])
    if argv[:1] == ["demo"]:
        return demo.main(argv[1:])
    arguments = parser().parse_args(argv)
    logging.basicConfig(level=arguments.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        asyncio.run(serve(arguments))
    except ValueError as exc:
        print(f"sandbox: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
