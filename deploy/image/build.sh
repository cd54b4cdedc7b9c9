#!/bin/bash
# Build the grading image (deploy/image/Containerfile) from Debian's archive and PyPI only:
#   1. the base: a minimal Debian root file system made by mmdebstrap, imported as $BASE
#      (skipped when $BASE exists; --rebuild-base makes it again, e.g. for security updates)
#   2. the build context in _build/image/context: course/ = the repository's files that git
#      tracks or would track (as in the working tree), wheels/ = torch's CPU wheel at the pin of
#      requirements.txt (pip download: a find-links folder or PyTorch's CPU index),
#      ca-certificates/ = the host's /usr/local/share/ca-certificates (used while building only)
#   3. podman build (or buildah bud) -> $IMAGE
# Then push it where the cluster pulls from, and name it in deploy/kubernetes/autograde-job.yaml:
#   podman push resnet-course-grader:latest docker://registry.example.edu/resnet-course-grader:latest
# Needs root (mmdebstrap, podman) and: apt-get install mmdebstrap podman
# Usage: deploy/image/build.sh [--rebuild-base]      (IMAGE, BASE, SUITE, MIRROR from the env)
# PODMAN_FLAGS: extra options of `podman build` and of the test's `podman run`, for hosts where
#   the defaults fail, e.g. a cgroup v1/v2 hybrid without CAP_SYS_RESOURCE (crun: "cgroups in
#   hybrid mode not supported"; both: "setrlimit RLIMIT_NPROC: Operation not permitted"):
#   PODMAN_FLAGS="--runtime runc --ulimit nofile=20000:20000 --ulimit nproc=32768:32768"
# Takes about 18 min the first time on a busy 2-core machine (mmdebstrap 3, apt-get and pip
# installing the environment 14; a 2.35 GB image), 30 s when only the course's files changed.
set -euo pipefail

IMAGE=${IMAGE:-resnet-course-grader:latest}
SUITE=${SUITE:-bookworm}  # python3 3.11, as the wheels of requirements.txt (cp311)
BASE=${BASE:-localhost/resnet-course-grader-base:$SUITE}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
PODMAN_FLAGS=${PODMAN_FLAGS:-}
REPO=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$REPO/_build/image

rebuild_base=0
for arg in "$@"; do
    case $arg in
        --rebuild-base) rebuild_base=1 ;;
        -h|--help) sed -n '2,/^set -e/{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
    esac
done
for tool in mmdebstrap podman git; do
    command -v "$tool" >/dev/null || {
        echo "build.sh: '$tool' not found (Debian: apt-get install mmdebstrap podman git)" >&2
        exit 2; }
done

# 1. base root file system: Debian minbase (apt, dpkg, coreutils, util-linux), with updates and
#    security fixes in its sources
if [ "$rebuild_base" = 1 ] || ! podman image exists "$BASE"; then
    echo "== base $BASE: mmdebstrap $SUITE from $MIRROR"
    mmdebstrap --variant=minbase --mode=auto --format=tar "$SUITE" - \
        "deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main" \
        "deb ${MIRROR%/debian}/debian-security $SUITE-security main" \
        | podman import --change 'CMD ["/bin/bash"]' - "$BASE"
fi

# 2. build context
echo "== context $OUT/context"
rm -rf "$OUT/context"
mkdir -p "$OUT/context/course" "$OUT/wheels"
cd "$REPO"
git ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do [ -e "$f" ] && printf '%s\0' "$f"; done \
    | tar --null -T - -cf - | tar -xf - -C "$OUT/context/course"
torch_pin=$(sed -n 's/^torch==\([^ ;#]*\).*/\1/p' requirements.txt)
[ -n "$torch_pin" ] || { echo "build.sh: no torch==VERSION in requirements.txt" >&2; exit 2; }
wheel="torch-$torch_pin+cpu-cp311-cp311-manylinux_2_28_x86_64.whl"
if [ ! -f "$OUT/wheels/$wheel" ]; then
    python3 -m pip download --quiet --no-deps --dest "$OUT/wheels" --only-binary=:all: \
        --platform manylinux_2_28_x86_64 --python-version 3.11 --implementation cp --abi cp311 \
        --extra-index-url https://download.pytorch.org/whl/cpu "torch==$torch_pin+cpu"
fi
[ -f "$OUT/wheels/$wheel" ] || { echo "build.sh: pip did not fetch $wheel" >&2; exit 1; }
# the host's own CAs (Debian's place for them), so that pip trusts what the host trusts
mkdir -p "$OUT/context/wheels" "$OUT/context/ca-certificates"
find /usr/local/share/ca-certificates -maxdepth 1 -name '*.crt' \
    -exec cp {} "$OUT/context/ca-certificates/" \; 2>/dev/null || true
cp -l "$OUT/wheels/$wheel" "$OUT/context/wheels/" 2>/dev/null \
    || cp "$OUT/wheels/$wheel" "$OUT/context/wheels/"

# 3. the image (host network for apt-get and pip: a build needs only Debian's archive and PyPI)
echo "== image $IMAGE"
# shellcheck disable=SC2086  # PODMAN_FLAGS: several options
podman build $PODMAN_FLAGS --network=host --build-arg "BASE=$BASE" -f "$REPO/deploy/image/Containerfile" \
    -t "$IMAGE" "$OUT/context"
echo "built $IMAGE; test: GRADER_IMAGE_TEST=1 .venv/bin/python -m pytest -n 0 tests/grader/test_grader_image.py"
