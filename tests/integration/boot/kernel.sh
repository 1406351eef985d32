# Debian's cloud kernel for the end-to-end tests (boot.sh, libguestfs.sh),
# without installing it into the host.  Source it after tests/lib/lib.sh,
# then call debian_kernel.
#
# The package that linux-image-cloud-amd64 depends on (for example
# linux-image-6.1.0-56-cloud-amd64) is fetched with `apt-get download`,
# extracted with `dpkg-deb -x` and its modules indexed with `depmod -b`,
# into REPDISK_TEST_CACHE (default /var/cache/repdisk-test/PACKAGE/), so
# that later runs, and the other test, reuse it: only the first run
# downloads (about 27 MB) and extracts it (about 105 MB).  A newer kernel
# package replaces the cached one.

REPDISK_TEST_CACHE=${REPDISK_TEST_CACHE:-/var/cache/repdisk-test}

# debian_kernel: sets KVER (6.1.0-56-cloud-amd64), KERNEL (its vmlinuz)
# and KMODULES (its lib/modules/KVER, with modules.dep).
debian_kernel() {
	requires apt-get apt-cache dpkg-deb depmod flock
	local cache=$REPDISK_TEST_CACHE pkg dir tmp lockfd
	mkdir -p "$cache" 2> /dev/null && [ -w "$cache" ] || {
		echo "$TEST_NAME: SKIP: cannot write the kernel cache $cache (run as root, or set REPDISK_TEST_CACHE)" >&2
		exit 77
	}
	exec {lockfd}> "$cache/.lock"
	flock "$lockfd"
	pkg=$(_kernel_package)
	if [ -z "$pkg" ] || ! _kernel_cached "$cache/$pkg"; then
		# the package lists may be missing or stale (security updates
		# rename the kernel package): refresh them once
		apt-get update -q > "$T/apt-update.log" 2>&1 ||
			{ cat "$T/apt-update.log" >&2; fail "apt-get update failed"; }
		pkg=$(_kernel_package)
		[ -n "$pkg" ] || fail "apt knows no linux-image-cloud-amd64"
	fi
	dir=$cache/$pkg
	if ! _kernel_cached "$dir"; then
		say "downloading $pkg into $dir (once: later runs reuse it)"
		tmp=$(mktemp -d "$cache/.download.XXXXXX")
		cleanup "rm -rf '$tmp'"
		(cd "$tmp" && apt-get download -q -o APT::Sandbox::User=root "$pkg") \
			> "$T/apt-download.log" 2>&1 ||
			{ cat "$T/apt-download.log" >&2; fail "apt-get download $pkg failed"; }
		dpkg-deb -x "$tmp"/"$pkg"_*.deb "$tmp/root" || fail "dpkg-deb -x $pkg"
		rm -f "$tmp"/*.deb
		depmod -b "$tmp/root" "${pkg#linux-image-}" || fail "depmod for $pkg"
		touch "$tmp/root/.complete"
		# older kernels go: one cached kernel at a time
		find "$cache" -mindepth 1 -maxdepth 1 -name 'linux-image-*' -exec rm -rf {} +
		mv "$tmp/root" "$dir"
	fi
	exec {lockfd}>&-
	KVER=${pkg#linux-image-}
	KERNEL=$dir/boot/vmlinuz-$KVER
	KMODULES=$dir/lib/modules/$KVER
	[ -f "$KERNEL" ] && [ -f "$KMODULES/modules.dep" ] || fail "$dir holds no kernel $KVER"
}

_kernel_package() {
	apt-cache depends linux-image-cloud-amd64 2> /dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9]/ { print $2; exit }'
}

_kernel_cached() { [ -f "$1/.complete" ]; }
