# Sourced by the container tests (scripts/container-smoke-test, scripts/scale-out-test). Expects ROOT and a
# log function. Provides: ensure_podman (installs it as root, or returns 1 so the caller can skip),
# podman_settings (runtime settings these VMs need) and ensure_base (the local stand-in for python:3.11-slim).
#
# No container registry is reachable here, so the base (BASE_IMAGE) is a local stand-in for python:3.11-slim:
# Debian bookworm (debootstrap) with Debian's Python 3.11 in a venv at /usr/local. That throwaway base also
# carries this machine's CA certificates (outbound HTTPS is intercepted here); none of that is in the
# project's Dockerfile. It is cached between runs on the same machine.

# Any python:3.11-slim-like image can stand in (e.g. CDS_BASE_IMAGE=python:3.11-slim where a registry is reachable).
BASE=${CDS_BASE_IMAGE:-localhost/cds-lbp-python-base:bookworm}
STATE=${CDS_CONTAINER_STATE:-/var/tmp/cds-lbp-container}

# ensure_podman [extra Debian packages...]
ensure_podman() {
  local missing=()
  command -v podman >/dev/null 2>&1 || missing+=(podman buildah runc debootstrap)
  local extra
  for extra in "$@"; do command -v "$extra" >/dev/null 2>&1 || missing+=("$extra"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing ${missing[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    return 0
  fi
  log "SKIPPED: ${missing[*]} not installed and cannot be installed here (needs root and apt-get)"
  return 1
}

podman_settings() {
  mkdir -p "$STATE"
  # crun cannot start containers on these VMs; runc can. Low default ulimits break pip.
  cat > "$STATE/containers.conf" <<'CONF'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
CONF
  export CONTAINERS_CONF=$STATE/containers.conf
}

# The Debian mirror apt uses on this machine (for debootstrap and for images that install Debian packages).
debian_mirror() {
  local mirror
  mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$mirror" ] || mirror=$(awk '/^deb / {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
  printf '%s' "$mirror"
}

build_base() {
  local mirror rootfs
  mirror=$(debian_mirror)
  [ -n "$mirror" ] || { log "no Debian mirror configured for apt"; exit 1; }
  rootfs=$(mktemp -d "$STATE/rootfs.XXXXXX")
  log "building the local base image (debootstrap bookworm; about a minute)"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$rootfs" "$mirror" >/dev/null
  cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/" 2>/dev/null || true
  mount -t proc proc "$rootfs/proc"
  chroot "$rootfs" update-ca-certificates >/dev/null
  chroot "$rootfs" python3 -m venv /usr/local
  umount "$rootfs/proc"
  rm -rf "$rootfs/var/lib/apt/lists/"* "$rootfs/var/cache/apt/"*
  local ca=/etc/ssl/certs/ca-certificates.crt
  tar -C "$rootfs" -c . | podman import \
    --change 'ENV PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "ENV PIP_CERT=$ca" --change "ENV SSL_CERT_FILE=$ca" --change "ENV REQUESTS_CA_BUNDLE=$ca" \
    - "$BASE" >/dev/null
  rm -rf "$rootfs"
}

# ensure_base: returns 1 (caller skips) when the base is missing and cannot be built (not root).
ensure_base() {
  if podman image exists "$BASE"; then
    log "using the cached base image $BASE"
    return 0
  fi
  if [ "$(id -u)" != 0 ]; then
    log "SKIPPED: no base image $BASE, and building one (debootstrap, chroot) needs root; set CDS_BASE_IMAGE"
    return 1
  fi
  local started
  started=$(date +%s)
  build_base
  log "base image ready in $(( $(date +%s) - started )) s"
}
