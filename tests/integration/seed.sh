#!/bin/bash
# Reseeding replicas from copies taken while the disk keeps changing:
#  - `repdisk seed --from DATADIR` of a running primary converges, while
#    the primary's log retention deletes segments (seed registers the new
#    replica with the log before it copies);
#  - a copy made with rsync --sparse (catalog, then checkpoint, then image,
#    the documented order, under a mount with --keep-log: nothing registers
#    a copy made by hand) is seeded from, and also followed directly by
#    `repdisk follow`, and both converge;
#  - a replica's damaged disk is rebuilt in place by seed;
# each checked with `repdisk verify` against the primary at rest.
. "$(dirname "$0")/../lib/lib.sh"
requires rsync cmp

data=$T/data mnt=$T/mnt log=file:$T/data/.repdisk/log
mount_disks "$data" "$mnt" --segment-mb 1
truncate -s 1G "$mnt/vm1.img"
dd if=/dev/urandom of="$mnt/vm1.img" bs=1M count=32 oflag=direct conv=notrunc status=none

# writes go on, at random blocks, during every copy below
writer() {
	local i=0
	rm -f "$T/stop"
	while [ ! -e "$T/stop" ]; do
		dd if=/dev/urandom of="$mnt/vm1.img" bs=64k count=1 \
			seek=$((RANDOM * 7 % 16384)) oflag=direct conv=notrunc status=none
		i=$((i + 1))
	done
	echo "$i" > "$T/writes"
}
writer &
WRITER=$!
cleanup "touch '$T/stop'; kill $WRITER 2>/dev/null"
sleep 0.5

# 1. seed from the running primary, whose log retention is at work
expect_exit 0 "$REPDISK" seed -q --from "$data" "$T/seeded"
grep -q "^vm1.img: copied from $data, log position [0-9]*$" "$T/stdout" ||
	fail "seed: $(cat "$T/stdout")"
# a checkpoint, and retention after it (once a second: wait up to 20 s)
for _ in $(seq 200); do
	grep -q "vm1.img: deleted [0-9]* log segments" "$data/.repdisk/mount.log" && break
	sleep 0.1
done
touch "$T/stop"
wait "$WRITER"
grep -q "vm1.img: deleted [0-9]* log segments" "$data/.repdisk/mount.log" ||
	fail "retention deleted nothing during the seed: the test proves nothing"
expect_exit 0 "$REPDISK" follow --once --log "$log" "$T/seeded"
unmount_disks "$mnt"

# 2. rsync copies, in the documented order, while writes continue
mount_disks "$data" "$mnt" --segment-mb 1 --keep-log
writer &
WRITER=$!
cleanup "touch '$T/stop'; kill $WRITER 2>/dev/null"
sleep 0.5
copy=$T/copy manual=$T/manual
for d in "$copy" "$manual"; do
	mkdir -p "$d/.repdisk/ckpt"
	rsync -a "$data/.repdisk/catalog" "$d/.repdisk/"
	rsync -a "$data/.repdisk/ckpt/" "$d/.repdisk/ckpt/"
	rsync -a --sparse "$data/vm1.img" "$d/"
done
sleep 0.5
touch "$T/stop"
wait "$WRITER"
say "$(cat "$T/writes") writes during the copies"
unmount_disks "$mnt"

expect_exit 0 "$REPDISK" seed -q --from "$copy" --log "$log" "$T/from-copy"
expect_exit 0 "$REPDISK" follow --once --log "$log" "$manual"
expect_exit 0 "$REPDISK" follow --once --log "$log" "$T/seeded"

for r in "$T/seeded" "$T/from-copy" "$manual"; do
	expect_exit 0 "$REPDISK" verify -q "$data" "$r"
	grep -q "^vm1.img: identical" "$T/stdout" || fail "$r: $(cat "$T/stdout")"
done
# holes stayed holes: the seeded image holds no more blocks than the
# primary's (how many the writer touched depends on the machine's speed,
# so the primary is the measure; 4 MiB of slack for file system metadata)
used=$(du -k "$T/seeded/vm1.img" | cut -f1) want=$(du -k "$data/vm1.img" | cut -f1)
[ "$used" -le $((want + 4096)) ] ||
	fail "the seeded image is not sparse: $used KiB allocated, the primary's $want KiB"

# 3. a replica whose image was damaged is rebuilt in place
printf 'garbage' | dd of="$manual/vm1.img" bs=1 seek=4096 conv=notrunc status=none
expect_exit 1 "$REPDISK" verify -q "$data" "$manual"
expect_exit 0 "$REPDISK" seed -q --from "$data" "$manual" vm1.img
expect_exit 0 "$REPDISK" verify -q "$data" "$manual"

# refusals, and nothing changed by them
expect_exit 2 "$REPDISK" seed "$T/x"
expect_stderr "--from SOURCE is required"
expect_exit 1 "$REPDISK" seed -q --from "$data" "$manual" nosuch.img
expect_stderr "nosuch.img: no such disk in"
cmp "$data/vm1.img" "$manual/vm1.img" || fail "a refused seed changed the replica"
say "ok"
