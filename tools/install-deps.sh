#!/bin/bash
# Installs what repdisk needs to build and test, from Debian's archive.
# Run as root on Debian 12.  Safe to run again.
set -euo pipefail

packages=(
	build-essential cmake pkg-config
	libfuse3-dev fuse3 librdkafka-dev libzstd-dev libsodium-dev check
	libjansson-dev
	# XXH3, a candidate for the record format's check (tools/bench/checksums.c)
	libxxhash-dev
	# the clients the tests drive, as users do
	qemu-utils fio e2fsprogs rsync python3 util-linux procps kcat
	# a real Apache Kafka cluster for the Kafka tests (tools/kafka-cluster.sh:
	# the broker's jars come from Maven Central), and the certificates of
	# its TLS tests
	openjdk-17-jre-headless maven openssl iproute2
	# the end-to-end tests: a VM booted from a disk (boot.sh; its kernel is
	# Debian's cloud kernel, fetched by the test with apt-get download),
	# and libguestfs (libguestfs.sh)
	qemu-system-x86 extlinux syslinux-common busybox-static fdisk cpio
	libguestfs-tools
	# the fuzz harnesses (tests/fuzz: clang's libFuzzer, and its runtime,
	# which is only a recommendation of clang's and so not installed with
	# --no-install-recommends)
	clang libclang-rt-14-dev
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	export DEBIAN_FRONTEND=noninteractive
	apt-get update
	apt-get install -y --no-install-recommends "${missing[@]}"
fi
