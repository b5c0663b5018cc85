"""A pod's ServiceAccount volume on disk, laid out and rotated the way kubelet does it.

kubelet's AtomicWriter writes a projected volume as a timestamped directory `..2026_12_05_18_00_00.123`, points the
symlink `..data` at it, and makes each file a symlink through `..data` (`token -> ..data/token`). An update writes a
new timestamped directory and renames a new `..data` symlink over the old one, so a reader sees the old files or
the new ones, never a mix, and the token file it opens is a new inode. Tests mount such a directory at
/var/run/secrets/kubernetes.io/serviceaccount (containers) or hand it to the in-cluster loader (in process).
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

DATA = "..data"


class ProjectedServiceAccount:
    """`token`, `ca.crt` and `namespace` in `directory`, readable by any user (kubelet's default mode 0644)."""

    def __init__(self, directory: Path, *, token: str, ca_pem: bytes, namespace: str) -> None:
        self.directory = directory
        self._files = {"token": token.encode(), "ca.crt": ca_pem, "namespace": namespace.encode()}
        self._generation = 0
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o755)
        self._publish()

    def rotate(self, token: str) -> None:
        """Publish a new token, as kubelet does when the old one nears its expiry."""
        self._files["token"] = token.encode()
        self._publish()

    def replace(self, name: str, content: bytes | None) -> None:
        """Publish other content for one file (None: leave it out of the volume)."""
        if content is None:
            self._files.pop(name, None)
        else:
            self._files[name] = content
        self._publish()

    def _publish(self) -> None:
        self._generation += 1
        stamp = datetime.now(UTC).strftime("%Y_%m_%d_%H_%M_%S")
        target = self.directory / f"..{stamp}.{self._generation}"
        target.mkdir(mode=0o755)
        for name, content in self._files.items():
            (target / name).write_bytes(content)
            (target / name).chmod(0o644)
        previous = (self.directory / DATA).resolve() if (self.directory / DATA).is_symlink() else None
        staging = self.directory / "..data_tmp"
        staging.unlink(missing_ok=True)
        staging.symlink_to(target.name)
        os.replace(staging, self.directory / DATA)
        for name in ("token", "ca.crt", "namespace"):
            link = self.directory / name
            if name in self._files and not link.is_symlink():
                link.symlink_to(f"{DATA}/{name}")
            elif name not in self._files and link.is_symlink():
                link.unlink()
        if previous is not None and previous != target.resolve():
            shutil.rmtree(previous, ignore_errors=True)
