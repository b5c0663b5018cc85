#!/usr/bin/env bash
# Make an offline stand-in for python:3.11-slim-bookworm from Debian's own packages, for machines that reach
# Debian's mirror and PyPI but no container registry (this project's CI). The Dockerfile stays what users build
# against the real base; only PYTHON_IMAGE changes. Bookworm's python3 is 3.11, like the image it stands in for.
#
#   hack/base-image.sh [TAG]          TAG defaults to local/python:3.11-slim-bookworm
#
# Cached: when TAG exists already, nothing is done (docker rmi TAG to rebuild). Needs root, debootstrap and a
# running docker daemon. Environment:
#   DEBIAN_MIRROR   the mirror debootstrap fetches from; default: the first deb.debian.org-style URI of apt's
#                   configuration (/etc/apt/sources.list*), else http://deb.debian.org/debian
#   CA_BUNDLE       the CA bundle copied in (pip's `cert` inside the build); default /etc/ssl/certs/ca-certificates.crt
#   DOCKER          the docker client (default docker)
set -euo pipefail

tag=${1:-local/python:3.11-slim-bookworm}
docker=${DOCKER:-docker}
ca_bundle=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

if "$docker" image inspect "$tag" >/dev/null 2>&1; then
    echo "base-image: $tag exists, kept (docker rmi $tag to rebuild)"
    exit 0
fi

mirror_from_apt() {
    # deb822 (URIs: ...) and one-line (deb URI suite ...) sources; the first one serving the "debian" archive.
    local files=(/etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources)
    {
        grep -hs -E '^URIs:' "${files[@]}" | awk '{print $2}'
        grep -hs -E '^deb ' "${files[@]}" | awk '{for (i = 2; i <= NF; i++) if ($i ~ /:\/\//) {print $i; break}}'
    } | grep -E '/debian/?$' | head -n 1
}
mirror=${DEBIAN_MIRROR:-$(mirror_from_apt || true)}
mirror=${mirror:-http://deb.debian.org/debian}

for tool in debootstrap "$docker"; do
    command -v "$tool" >/dev/null || { echo "base-image: $tool is not installed" >&2; exit 1; }
done
[ -r "$ca_bundle" ] || { echo "base-image: CA bundle $ca_bundle is not readable (set CA_BUNDLE)" >&2; exit 1; }

rootfs=$(mktemp -d "${TMPDIR:-/tmp}/kubernaut-base.XXXXXX")
trap 'rm -rf "$rootfs"' EXIT

started=$(date +%s)
echo "base-image: debootstrap bookworm from $mirror"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs" "$mirror" \
    >"$rootfs.log" 2>&1 || { tail -n 30 "$rootfs.log" >&2; rm -f "$rootfs.log"; exit 1; }
rm -f "$rootfs.log"

# The official image's interpreter is /usr/local/bin/python; the Dockerfile calls `python`.
ln -sf /usr/bin/python3 "$rootfs/usr/local/bin/python"
# This machine's CA bundle (it may hold a proxy's CA that PyPI's certificate is checked against) and a pip.conf
# naming it, plus the index this machine's pip uses, if it names one.
install -m 0644 "$ca_bundle" "$rootfs/etc/ssl/certs/kubernaut-build-ca.crt"
{
    echo "[global]"
    echo "cert = /etc/ssl/certs/kubernaut-build-ca.crt"
    index_url=${PIP_INDEX_URL:-$(pip3 config get global.index-url 2>/dev/null || true)}
    if [ -n "$index_url" ] && [[ "$index_url" != file:* ]]; then echo "index-url = $index_url"; fi
} >"$rootfs/etc/pip.conf"
# Smaller: no apt lists, docs or locales are needed to run python.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/usr/share/doc/* \
    "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*

tar -C "$rootfs" --numeric-owner -c . | "$docker" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["python3"]' \
    - "$tag" >/dev/null
echo "base-image: $tag made in $(($(date +%s) - started)) s, $("$docker" image inspect -f '{{.Size}}' "$tag") bytes"
