#!/usr/bin/env bash
# The two Switchboard images from deploy/Dockerfile, with docker when its engine answers, else buildah.
#   tools/image.sh tools   apt-get install buildah and debootstrap when missing (root; make image-tools)
#   tools/image.sh build   $IMAGE_REPO:$IMAGE_TAG (target runtime) and $IMAGE_REPO-enrichment:$IMAGE_TAG
#                          (target enrichment); nothing to do when both carry the current source hash (make image)
#   tools/image.sh hash    that hash: the files the Dockerfile copies, the Dockerfile, this script, the base
# Env (the Makefile passes its variables of the same names):
#   BASE_IMAGE   debian (default): tools/image-base.sh's debootstrapped bookworm; official: the
#                Dockerfile's default (python:3.11-slim-bookworm by digest); else any image reference
#   IMAGE_REPO   switchboard (e.g. registry.example.com/switchboard); IMAGE_TAG: pyproject.toml's version
#   IMAGE_TOOL   docker | buildah; PIP_CERT: a CA bundle for pip during the build (a build secret)
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=.cache/image
mkdir -p "$CACHE"
log() { echo "image: $*" >&2; }

VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml)
IMAGE_REPO=${IMAGE_REPO:-switchboard}
IMAGE_TAG=${IMAGE_TAG:-$VERSION}
BASE_IMAGE=${BASE_IMAGE:-debian}
tool=${IMAGE_TOOL:-}
if [[ -z $tool ]]; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then tool=docker; else tool=buildah; fi
fi
export IMAGE_TOOL=$tool
if [[ $tool == buildah && ${CONTAINERS_CONF:-$PWD/$CACHE/containers.conf} == "$PWD/$CACHE/containers.conf" ]]; then
  # buildah's default ulimits are refused where the hard limits are lower (these CI machines).
  printf '[containers]\ndefault_ulimits = []\n' >"$CACHE/containers.conf"
  export CONTAINERS_CONF=$PWD/$CACHE/containers.conf
fi
export BUILDAH_ISOLATION=${BUILDAH_ISOLATION:-chroot}

install_tools() {
  local want=()
  command -v debootstrap >/dev/null || want+=(debootstrap)
  if ! command -v buildah >/dev/null && ! { command -v docker >/dev/null && docker info >/dev/null 2>&1; }; then
    want+=(buildah)
  fi
  [[ ${#want[@]} -eq 0 ]] && return 0
  local sudo=""
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { log "need root (or sudo) to apt-get install ${want[*]}"; return 1; }
    sudo="sudo"
  fi
  command -v apt-get >/dev/null || { log "no apt-get: install ${want[*]} yourself"; return 1; }
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get install -y -q --no-install-recommends "${want[@]}" >&2 \
    || { $sudo apt-get update -q >&2 && $sudo apt-get install -y -q --no-install-recommends "${want[@]}" >&2; }
}

image_label() {  # image label -> value ("" when the image or the label is missing)
  if [[ $tool == docker ]]; then
    docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
  else
    buildah inspect --type image --format "{{ index .OCIv1.Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
  fi
}

image_id() {
  if [[ $tool == docker ]]; then docker image inspect --format '{{.Id}}' "$1" 2>/dev/null || echo "$1"
  else buildah inspect --type image --format '{{.FromImageID}}' "$1" 2>/dev/null || echo "$1"; fi
}

# The base's reference for the build (empty: the Dockerfile's default).
resolve_base() {
  case $BASE_IMAGE in
    debian) tools/image-base.sh | tail -1 ;;
    official) echo "" ;;
    *) echo "$BASE_IMAGE" ;;
  esac
}

# The paths the Dockerfile copies from the context (.dockerignore keeps the context to these).
copied_paths() {
  sed -e ':a' -e '/\\$/N; s/\\\n//; ta' deploy/Dockerfile | awk '$1 == "COPY" && $2 !~ /^--/ {
    for (i = 2; i < NF; i++) print $i }'
}

source_hash() {  # $1: the base reference
  local base=$1
  {
    echo "base ${base:-official} $( [[ -n $base ]] && image_id "$base" )"
    # shellcheck disable=SC2046
    find deploy/Dockerfile .dockerignore tools/image.sh $(copied_paths) -type f \
      ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 | sort -z | xargs -0 sha256sum
  } | sha256sum | cut -c1-16
}

build() {
  command -v "$tool" >/dev/null || { log "$tool missing: tools/image.sh tools (make image-tools) installs buildah"; exit 1; }
  local base hash common enrichment
  base=$(resolve_base)
  hash=$(source_hash "$base")
  common=$IMAGE_REPO:$IMAGE_TAG
  enrichment=$IMAGE_REPO-enrichment:$IMAGE_TAG
  if [[ $(image_label "$common" switchboard.source) == "$hash" && $(image_label "$enrichment" switchboard.source) == "$hash" ]]; then
    log "$common and $enrichment are up to date (source $hash)"
    sizes "$common" "$enrichment"
    return 0
  fi
  local args=(-f deploy/Dockerfile --label "switchboard.source=$hash" --label "org.opencontainers.image.version=$VERSION")
  [[ -n $base ]] && args+=(--build-arg "BASE_IMAGE=$base")
  # pip's CA bundle on this machine (PIP_CERT, else pip's config `cert`) for pip in the build: where a
  # proxy intercepts TLS, pip's own CA list fails on PyPI.
  local cert=${PIP_CERT:-}
  if [[ -z $cert ]]; then
    cert=$({ .venv/bin/pip config list || python3 -m pip config list; } 2>/dev/null \
      | sed -n "s/^[a-z:]*\.cert='\(.*\)'$/\1/p" | head -1) || true
  fi
  [[ -n $cert && -s $cert ]] && args+=(--secret "id=pip-cert,src=$cert")
  log "building $common and $enrichment from ${base:-the default base of the Dockerfile} with $tool (source $hash)"
  local started=$SECONDS
  if [[ $tool == docker ]]; then
    DOCKER_BUILDKIT=1 docker build "${args[@]}" --target runtime -t "$common" . >&2
    DOCKER_BUILDKIT=1 docker build "${args[@]}" --target enrichment -t "$enrichment" . >&2
  else
    buildah bud --isolation "$BUILDAH_ISOLATION" --layers "${args[@]}" --target runtime -t "$common" . >&2
    buildah bud --isolation "$BUILDAH_ISOLATION" --layers "${args[@]}" --target enrichment -t "$enrichment" . >&2
  fi
  log "built in $((SECONDS - started)) s"
  sizes "$common" "$enrichment"
}

sizes() {
  local image size
  for image in "$@"; do
    if [[ $tool == docker ]]; then
      size=$(docker image inspect --format '{{.Size}}' "$image" | awk '{ printf "%.0f MB", $1 / 1e6 }')
    else
      size=$(buildah images --format '{{.Size}}' "$image" | head -1)
    fi
    echo "$image $size"
  done
}

case ${1:-} in
  tools) install_tools ;;
  build) build ;;
  hash) source_hash "$(resolve_base)" ;;
  *) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
