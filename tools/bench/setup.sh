# Sourced by the benchmark harnesses (run.sh, scale.sh) with $top set:
# installs what they need, builds repdisk RelWithDebInfo, and sets
# $repdisk to the binary.
command -v fio >/dev/null && command -v python3 >/dev/null || {
	apt-get install -y fio python3 >/dev/null
}
bash "$top/tools/install-deps.sh"
cmake -S "$top" -B "$top/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$top/build" -j "$(nproc)" >/dev/null
repdisk=$top/build/tools/repdisk
