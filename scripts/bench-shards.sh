#!/usr/bin/env bash
# Shards benchmark: what frozen shards cost a process, and how soon a
# shard's final checkpoint is public after its window ends.
#
#   scripts/bench-shards.sh
#
# 1. Six logs of N entries each are written by `stele-genlog` and adopted
#    (`stele adopt`). One runs alone as a single log ("one log"); the other
#    five run in one process as shards, first all five open ("5 open
#    shards"), then with four of them frozen ("1 active + 4 frozen": they
#    were started once with their window over), the fifth taking entries. Both processes are started in the same run and measured
#    alike: time to listening, resident memory once listening, then memory
#    and CPU time over an idle interval and over a load of `stele-load`
#    (16 workers, 256-byte entries, each waiting for its receipt) on the
#    active log.
# 2. A one-shard process whose window ends during a load: the time from the
#    window's end to `final-checkpoint` being served (polled over HTTP every
#    2 ms), over BENCH_SHARDS_ROUNDS rounds.
#
# Environment:
#   BENCH_SHARDS_ENTRIES   entries per log (default 1000000)
#   BENCH_SHARDS_SECONDS   length of each idle and load interval (default 10)
#   BENCH_SHARDS_ROUNDS    freezes timed (default 5)
#   BENCH_OUT              results and logs (default target/bench-shards)
#   BENCH_BIN              folder of stele, stele-genlog, stele-load
#                          (default target/release, built unless
#                          BENCH_NO_BUILD=1)
# The logs run without the Sigstore kind (so without the indexer, which
# would spend the first start reading each freshly adopted log) and without
# the history. Figures from a shared 2-core machine are noisy; nothing here asserts a
# timing. Needs python3.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
entries="${BENCH_SHARDS_ENTRIES:-1000000}"
seconds="${BENCH_SHARDS_SECONDS:-10}"
rounds="${BENCH_SHARDS_ROUNDS:-5}"
out="${BENCH_OUT:-$root/target/bench-shards}"
bin="${BENCH_BIN:-$root/target/release}"
if [[ "${BENCH_NO_BUILD:-0}" != 1 && -z "${BENCH_BIN:-}" ]]; then
    cargo build --release --locked -p stele-sequencer --bin stele \
        -p stele-e2e --bin stele-genlog --bin stele-load >&2
fi
rm -rf "$out"
mkdir -p "$out/bin"
# Copies, so that a build in the shared target/ cannot swap them mid-run.
for tool in stele stele-genlog stele-load; do
    cp "$bin/$tool" "$out/bin/$tool"
done
trap 'rm -rf "${out:?}/logs" "${out:?}/bin"' EXIT

python3 - "$out" "$entries" "$seconds" "$rounds" <<'PY'
import json, os, signal, subprocess, sys, time, urllib.request, urllib.error
from datetime import datetime, timezone, timedelta

out, entries, seconds, rounds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
stele, genlog, load = (f"{out}/bin/{t}" for t in ("stele", "stele-genlog", "stele-load"))
logs = f"{out}/logs"
os.makedirs(logs, exist_ok=True)
ticks = os.sysconf("SC_CLK_TCK")

def run(*args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

def make_log(name):
    keys = f"{logs}/keys-{name}"
    run(stele, "keygen", "--origin", f"bench.example/{name}", "--out", keys)
    data = f"{logs}/{name}"
    run(genlog, "write", "--out", data, "--entries", str(entries), "--key", f"{keys}/log.key")
    run(stele, "adopt", "--data", data, "--origin", f"bench.example/{name}", "--key", f"{keys}/log.key")
    return data, f"{keys}/log.key"

def rfc3339(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

def shard_table(name, data, key, until=None):
    text = f'[[shard]]\nname = "{name}"\norigin = "bench.example/{name}"\ndata = "{data}"\nkey = "{key}"\n'
    if until:
        text += f'accept_until = "{rfc3339(until)}"\n'
    return text

def config(path, body, single=None):
    # No indexer and no history: a freshly adopted log's indexer reads the
    # whole log once, which would be measured as the idle CPU of whichever
    # process first opens it.
    head = 'listen = "127.0.0.1:0"\nhistory_interval = "0s"\nno_sigstore = true\n'
    if single:
        data, key = single
        head += f'data = "{data}"\nkey = "{key}"\norigin = "bench.example/solo"\n'
    else:
        head += f'data = "{logs}/shards"\n'
    with open(path, "w") as f:
        f.write(head + body)

class Serve:
    def __init__(self, label, cfg):
        self.out = open(f"{logs}/{label}.out", "w+")
        self.err = open(f"{logs}/{label}.err", "w")
        self.started = time.perf_counter()
        self.process = subprocess.Popen([stele, "serve", "--config", cfg], stdout=self.out,
                                        stderr=self.err, stdin=subprocess.DEVNULL)
        self.url = None
        while self.url is None:
            if self.process.poll() is not None:
                sys.exit(f"bench-shards: {label} exited; see {logs}/{label}.err")
            self.out.seek(0)
            for line in self.out:
                if line.startswith("listening on "):
                    self.url = line.split()[2]
            time.sleep(0.002)
        self.ready_s = time.perf_counter() - self.started

    def status(self, field):
        with open(f"/proc/{self.process.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def cpu_s(self):
        with open(f"/proc/{self.process.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=120)

def measure(label, serve, submit_url):
    row = dict(label=label, ready_s=round(serve.ready_s, 3), rss_ready_mib=round(serve.status("VmRSS"), 1))
    cpu = serve.cpu_s()
    time.sleep(seconds)
    row["idle_cpu_pct"] = round(100 * (serve.cpu_s() - cpu) / seconds, 2)
    row["rss_idle_mib"] = round(serve.status("VmRSS"), 1)
    cpu = serve.cpu_s()
    result = subprocess.run([load, "--url", submit_url, "-c", "16", "--duration", f"{int(seconds)}s",
                             "--warmup", "1s", "--json"], capture_output=True, text=True)
    row["load_cpu_pct"] = round(100 * (serve.cpu_s() - cpu) / seconds, 1)
    row["rss_load_mib"] = round(serve.status("VmRSS"), 1)
    row["hwm_mib"] = round(serve.status("VmHWM"), 1)
    try:
        report = json.loads(result.stdout)
        row["load_per_s"] = round(report["entries_per_second"], 1)
        row["load_p50_ms"] = report["latency_ms"]["p50"]
        row["load_errors"] = report["errors"]
    except (ValueError, KeyError):
        sys.exit("bench-shards: stele-load gave no report:\n" + result.stdout + result.stderr)
    return row

sys.stderr.write(f"bench-shards: writing 6 logs of {entries} entries\n")
solo = make_log("solo")
shard_logs = {f"s{i}": make_log(f"s{i}") for i in range(5)}
rows = []
config(f"{logs}/solo.toml", "", single=solo)
serve = Serve("solo", f"{logs}/solo.toml")
rows.append(measure("one log", serve, serve.url))
serve.stop()
names = ("s0", "s1", "s2", "s3", "s4")
config(f"{logs}/open.toml", "".join(shard_table(n, *shard_logs[n]) for n in names))
serve = Serve("open", f"{logs}/open.toml")
rows.append(measure("5 open shards", serve, serve.url + "/s4"))
serve.stop()
# Freeze s0..s3: one start with their windows over.
past = datetime.now(timezone.utc) - timedelta(days=1)
body = "".join(shard_table(n, *shard_logs[n], until=past) for n in names[:4])
config(f"{logs}/freeze.toml", body)
serve = Serve("freeze", f"{logs}/freeze.toml")
deadline = time.time() + 600
while not all(os.path.exists(f"{shard_logs[n][0]}/final-checkpoint") for n in names[:4]):
    if time.time() > deadline:
        sys.exit("bench-shards: the shards did not freeze")
    time.sleep(0.05)
serve.stop()
body = "".join(shard_table(n, *shard_logs[n], until=past if n != "s4" else None) for n in names)
config(f"{logs}/five.toml", body)
serve = Serve("five", f"{logs}/five.toml")
rows.append(measure("1 active + 4 frozen", serve, serve.url + "/s4"))
serve.stop()

# Time from a window's end to its final checkpoint being served.
delays = []
for round_ in range(rounds):
    name = f"f{round_}"
    keys = f"{logs}/keys-{name}"
    run(stele, "keygen", "--origin", f"bench.example/{name}", "--out", keys)
    until = datetime.now(timezone.utc) + timedelta(seconds=4)
    config(f"{logs}/{name}.toml", shard_table(name, f"{logs}/{name}", f"{keys}/log.key", until=until))
    serve = Serve(name, f"{logs}/{name}.toml")
    loader = subprocess.Popen([load, "--url", f"{serve.url}/{name}", "-c", "16", "--duration", "6s",
                               "--warmup", "0s"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    end = until.timestamp()
    seen = None
    while seen is None and time.time() < end + 30:
        try:
            with urllib.request.urlopen(f"{serve.url}/{name}/final-checkpoint", timeout=5) as answer:
                answer.read()
                seen = time.time()
        except urllib.error.HTTPError:
            time.sleep(0.002)
    loader.wait()
    serve.stop()
    if seen is None:
        sys.exit("bench-shards: no final checkpoint within 30 s")
    delays.append(round((seen - end) * 1000, 1))

result = dict(entries=entries, seconds=seconds, processes=rows, freeze_ms=delays,
              freeze_ms_median=sorted(delays)[len(delays) // 2])
print(json.dumps(result, indent=1))
with open(f"{out}/results.json", "w") as f:
    json.dump(result, f, indent=1)
PY
