#!/usr/bin/env bash
# Runs the benchmarks and prints their tables: the simulator at 10 000 pods, the engine's
# injection and abort latencies, and the controller's idle footprint. Release builds;
# nothing fails on a number. Usage: benches/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never

echo "# machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | sed -n 1p)"
echo
echo "## the simulator at 10 000 pods (cargo bench --bench sim_scale)"
cargo bench --quiet --bench sim_scale 2>/dev/null
echo
echo "## the engine (cargo bench --bench engine)"
cargo bench --quiet --bench engine 2>/dev/null
echo
echo "## the controller, idle (disasterpiece controller -A against disasterpiece sim)"
cargo build --quiet --release
bin=target/release/disasterpiece
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
"$bin" sim --seed shop --kubeconfig-out "$work/kubeconfig" >/dev/null 2>&1 &
for _ in $(seq 50); do [ -s "$work/kubeconfig" ] && break; sleep 0.1; done
"$bin" controller -A --kubeconfig "$work/kubeconfig" --metrics-addr 127.0.0.1:0 >/dev/null 2>&1 &
controller=$!
python3 - "$controller" <<'PY'
import sys, time
pid = sys.argv[1]
def status(key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key):
            return int(line.split()[1])
def cpu():
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
time.sleep(3)
start, t0 = cpu(), time.time()
time.sleep(10)
used = (cpu() - start) / 100 / (time.time() - t0)
print(f"| controller idle | RSS {status('VmRSS:') / 1024:.1f} MiB | peak {status('VmHWM:') / 1024:.1f} MiB | CPU {used * 100:.2f}% of a core (10 s) |")
PY
