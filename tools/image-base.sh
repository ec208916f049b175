#!/usr/bin/env bash
# A base image for deploy/Dockerfile where no registry with base images is reachable: Debian bookworm
# (debootstrap --variant=minbase from the machine's Debian mirror) with python3.11, its venv module,
# ca-certificates, netbase and tzdata (what python:3.11-slim-bookworm adds), bookworm-updates and
# bookworm-security applied. Prints the image's name on its last line.
#   tools/image-base.sh              (make image-base; make image calls it with BASE_IMAGE=debian)
# The root file system is cached as .cache/image/base-<key>.tar.gz, <key> a hash of this script: delete
# it (or `make image-clean`) to pick up newer Debian updates. The image is re-imported when the local
# store lacks it. Root only (debootstrap, chroot).
# Env: IMAGE_TOOL (docker | buildah; default docker when its engine answers, else buildah),
#      DEBIAN_MIRROR, DEBIAN_SECURITY_MIRROR (default: the first ones in /etc/apt/sources.list*, else deb.debian.org).
set -euo pipefail
cd "$(dirname "$0")/.."
SUITE=bookworm
PACKAGES=python3.11,python3.11-venv,python3-distutils,ca-certificates,netbase,tzdata
KEY=$(sha256sum tools/image-base.sh | cut -c1-12)
NAME=localhost/switchboard-base:$SUITE-python3.11-$KEY
CACHE=.cache/image
TARBALL=$CACHE/base-$KEY.tar.gz
mkdir -p "$CACHE"
log() { echo "image-base: $*" >&2; }

tool=${IMAGE_TOOL:-}
if [[ -z $tool ]]; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then tool=docker; else tool=buildah; fi
fi
if [[ $tool == buildah && ${CONTAINERS_CONF:-$PWD/$CACHE/containers.conf} == "$PWD/$CACHE/containers.conf" ]]; then
  # buildah's default ulimits are refused where the hard limits are lower (these CI machines).
  printf '[containers]\ndefault_ulimits = []\n' >"$CACHE/containers.conf"
  export CONTAINERS_CONF=$PWD/$CACHE/containers.conf
fi

have_image() {
  if [[ $tool == docker ]]; then docker image inspect "$NAME" >/dev/null 2>&1
  else buildah inspect --type image "$NAME" >/dev/null 2>&1; fi
}
if have_image; then
  echo "$NAME"
  exit 0
fi

# URIs of the machine's apt sources (one-line and deb822 formats).
apt_uris() {
  cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources 2>/dev/null \
    | sed -n -e 's/^deb \(\[[^]]*\] \)\{0,1\}\([^ ]*\).*/\2/p' -e 's/^URIs: *//p' | tr ' ' '\n' | grep -E '^https?://' || true
}
MIRROR=${DEBIAN_MIRROR:-$(apt_uris | grep -v -- -security | grep '/debian/\{0,1\}$' | head -1)}
SECURITY=${DEBIAN_SECURITY_MIRROR:-$(apt_uris | grep -- '/debian-security/\{0,1\}$' | head -1)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY=${SECURITY:-http://deb.debian.org/debian-security}

if [[ ! -s $TARBALL ]]; then
  [[ $(id -u) -eq 0 ]] || { log "debootstrap needs root"; exit 1; }
  command -v debootstrap >/dev/null || { log "debootstrap missing: tools/image.sh tools installs it"; exit 1; }
  root=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-base.XXXXXX")
  cleanup() { umount "${root:?}/proc" 2>/dev/null || true; rm -rf "${root:?}"; }
  trap cleanup EXIT
  log "debootstrap $SUITE ($PACKAGES) from $MIRROR into $root"
  debootstrap --variant=minbase --include="$PACKAGES" "$SUITE" "$root" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
    || { tail -20 "$CACHE/debootstrap.log" >&2; exit 1; }
  cat >"$root/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY $SUITE-security main
EOF
  # As debian:bookworm-slim (under python:3.11-slim-bookworm): no docs but the copyright files, no man
  # pages, no translations; for the upgrade below and every package installed on top of the image.
  printf '%s\n' 'path-exclude /usr/share/doc/*' 'path-include /usr/share/doc/*/copyright' \
    'path-exclude /usr/share/man/*' 'path-exclude /usr/share/info/*' 'path-exclude /usr/share/locale/*' \
    'path-include /usr/share/locale/locale.alias' >"$root/etc/dpkg/dpkg.cfg.d/slim"
  log "apt-get upgrade from $SUITE-updates and $SUITE-security"
  mount -t proc proc "$root/proc"
  chroot "$root" apt-get update -q >>"$CACHE/debootstrap.log" 2>&1
  # "Can not write log (Is /dev/pts mounted?)" is apt's warning in a bare chroot, not an error.
  DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get -y -q upgrade >>"$CACHE/debootstrap.log" 2>&1
  umount "$root/proc"
  # Package lists, caches, logs and what debootstrap installed before the exclusions above (docs but
  # the copyright files, man pages, translations: 33 MB). resolv.conf and hostname are the host's:
  # the container runtime provides its own. ${root:?} everywhere: never the host's paths.
  rm -rf "${root:?}"/var/lib/apt/lists/* "${root:?}"/var/cache/apt/*.bin "${root:?}"/var/cache/apt/archives/*.deb \
    "${root:?}"/var/cache/apt/archives/partial/* "${root:?}"/var/log/*.log "${root:?}"/var/log/apt/* \
    "${root:?}"/usr/share/man/* "${root:?}"/usr/share/info/* "${root:?}"/etc/resolv.conf "${root:?}"/etc/hostname
  find "${root:?}/usr/share/doc" -mindepth 2 ! -type d ! -name copyright -delete
  find "${root:?}/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} +
  tar --numeric-owner -C "$root" -cf - . | gzip -1 >"$TARBALL.tmp"
  mv "$TARBALL.tmp" "$TARBALL"
  log "cached $TARBALL ($(du -h "$TARBALL" | cut -f1))"
fi

log "importing $TARBALL as $NAME ($tool)"
PATH_ENV=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
if [[ $tool == docker ]]; then
  docker import --change "ENV PATH=$PATH_ENV" --change "ENV LANG=C.UTF-8" --change "LABEL switchboard.base=$KEY" \
    --change 'CMD ["/bin/bash"]' "$TARBALL" "$NAME" >/dev/null
else
  ctr=$(buildah from scratch)
  mnt=$(buildah mount "$ctr")
  tar --numeric-owner -xpzf "$TARBALL" -C "$mnt"
  buildah umount "$ctr" >/dev/null
  buildah config --env PATH=$PATH_ENV --env LANG=C.UTF-8 --label switchboard.base="$KEY" --cmd /bin/bash \
    --created-by "tools/image-base.sh ($SUITE minbase + $PACKAGES)" "$ctr"
  buildah commit --rm -q "$ctr" "$NAME" >/dev/null
fi
echo "$NAME"
