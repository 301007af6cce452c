#!/bin/bash
# Two "nodes" on one machine: two network namespaces joined by a veth pair, each with its own host
# name (a UTS namespace), and an OpenMPI job across them over TCP. mpirun runs in the first
# namespace; its launch agent (plm_rsh_agent, ssh's place) starts the second node's daemon inside
# the second namespace. Both see this machine's file system, as cluster nodes see a shared one.
#
# Checks: the node-local placement (local ranks, ranks per node, threads per rank from the node's
# cores), a search on 2 nodes equal to the same search on 1 node, and a checkpoint written on 2
# nodes after a SIGTERM on the second node that resumes on 2 nodes to the straight run's end.
#
# Usage: test-two-nodes.sh <probnas binary>. Exit 77 (ctest: skipped) without the privileges.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 <probnas binary>" >&2; exit 2; }
BIN=$(readlink -f "$1")
skip() { echo "SKIP: $*"; exit 77; }
fail() { echo "FAIL: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || skip "network namespaces need root"
for tool in ip unshare hostname python3; do command -v $tool >/dev/null || skip "no $tool on PATH"; done
MPIRUN=${MPIEXEC:-$(command -v mpirun || true)}
[ -n "$MPIRUN" ] || skip "no mpirun on PATH"
"$MPIRUN" --version 2>&1 | grep -q "Open MPI" || skip "$MPIRUN is not Open MPI's (the launch agent and --mca options are)"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1

# Names and a /24 of this process's own (ctest may run other tests beside this one).
id=$(( $$ % 60000 ))
nsA=pnA$id nsB=pnB$id
vethA=pva$id vethB=pvb$id
net="10.$(( 100 + id / 250 % 150 )).$(( id % 250 ))"
hostA=pn-node-a hostB=pn-node-b
work=$(mktemp -d /tmp/probnas-two-nodes.XXXXXX)
made=()  # only the namespaces this run made are removed (a name left by another run is not ours)
cleanup() {
  local ns
  for ns in "${made[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

for ns in "$nsA" "$nsB"; do
  ip netns add "$ns" 2>"$work/err" || skip "cannot create the network namespace $ns: $(cat "$work/err")"
  made+=("$ns")
done
# The pair is made inside the namespaces, so it goes with them (nothing is left in this one).
ip -n "$nsA" link add "$vethA" type veth peer name "$vethB" netns "$nsB" 2>"$work/err" ||
  skip "cannot create a veth pair: $(cat "$work/err")"
ip -n "$nsA" addr add "$net.1/24" dev "$vethA"
ip -n "$nsB" addr add "$net.2/24" dev "$vethB"
for ns in "$nsA" "$nsB"; do
  ip -n "$ns" link set lo up
done
ip -n "$nsA" link set "$vethA" up
ip -n "$nsB" link set "$vethB" up
unshare --uts true 2>"$work/err" || skip "cannot create a UTS namespace: $(cat "$work/err")"

# The launch agent: "<agent> <host> <command...>", as mpirun calls ssh.
cat > "$work/agent" <<EOF
#!/bin/sh
host=\$1; shift
case \$host in
  $hostA) ns=$nsA ;;
  $hostB) ns=$nsB ;;
  *) echo "launch agent: unknown node \$host" >&2; exit 1 ;;
esac
exec ip netns exec \$ns unshare --uts /bin/sh -c "hostname \$host && \$*"
EOF
chmod +x "$work/agent"
printf '%s slots=2\n%s slots=2\n' "$hostA" "$hostB" > "$work/hosts"

# two_nodes <ranks> <env assignments> -- <probnas arguments>: an mpirun job spread over both nodes.
two_nodes() {
  local np=$1 env=$2
  shift 3
  ip netns exec "$nsA" unshare --uts /bin/sh -c "hostname $hostA && exec env $env $MPIRUN --hostfile $work/hosts \
    -np $np --map-by node --bind-to none --mca plm_rsh_agent $work/agent --mca oob_tcp_if_include $net.0/24 --mca btl tcp,self \
    --mca btl_tcp_if_include $net.0/24 -x PROBNAS_FAIL_AT $BIN $*"
}
one_node() {
  local np=$1
  shift
  "$MPIRUN" --oversubscribe --bind-to none -np "$np" --mca btl tcp,self "$BIN" "$@"
}

ARGS=(search --search.method drnas --data.dataset synthetic --data.synthetic_count 240 --data.synthetic_size
      12 --data.synthetic_channels 1 --data.synthetic_classes 4 --space.channels 4 --space.cells_per_stage 1 --search.epochs
      2 --search.batch_size 24 --search.micro_batches 4 --ckpt.interval_steps 2 --ckpt.epoch_end false --run.progress_interval 0)
CORES=$(nproc)

# The metrics without times, one line per epoch.
timeless() {
  [ -s "$1/metrics.jsonl" ] || { echo "no metrics in $1" >&2; echo "missing $1"; return 1; }
  python3 - "$1/metrics.jsonl" <<'EOF'
import json, sys
for line in open(sys.argv[1]):
    m = json.loads(line)
    for k in ("wall_s", "images_per_s", "slurm_job_id", "slurm_restart_count"):
        m.pop(k, None)
    print(json.dumps(m, sort_keys=True))
EOF
}

echo "== 1. placement: 2 nodes x 1 rank and 2 nodes x 2 ranks"
two_nodes 2 "PROBNAS_FAIL_AT=" -- "${ARGS[@]}" --run.dir "$work/n2r1" > "$work/n2r1.log" 2>&1 \
  || { cat "$work/n2r1.log"; fail "the 2-node job failed"; }
grep -q "2 ranks, cpu ($CORES threads), 2 node(s)" "$work/n2r1.log" \
  || { cat "$work/n2r1.log"; fail "expected 2 ranks on 2 nodes with $CORES threads each (one rank per node)"; }
grep -q "placement: $hostA ranks 0 (local 0); $hostB ranks 1 (local 0)" "$work/n2r1.log" \
  || { cat "$work/n2r1.log"; fail "expected rank 0 on $hostA and rank 1 on $hostB, both local rank 0"; }
two_nodes 4 "PROBNAS_FAIL_AT=" -- "${ARGS[@]}" --run.dir "$work/n2r2" > "$work/n2r2.log" 2>&1 \
  || { cat "$work/n2r2.log"; fail "the 2-node 4-rank job failed"; }
per_rank=$(( CORES / 2 > 0 ? CORES / 2 : 1 ))
grep -q "4 ranks, cpu ($per_rank threads), 2 node(s)" "$work/n2r2.log" \
  || { cat "$work/n2r2.log"; fail "expected 4 ranks on 2 nodes, $per_rank threads each (2 ranks share a node)"; }
grep -q "placement: $hostA ranks 0,2 (local 0,1); $hostB ranks 1,3 (local 0,1)" "$work/n2r2.log" \
  || { cat "$work/n2r2.log"; fail "expected ranks 0,2 on $hostA and 1,3 on $hostB (--map-by node)"; }
echo "ok: ranks, local ranks and threads per node"

echo "== 2. the same search on 1 node"
# One thread per rank on both sides: the thread count changes the order of oneDNN's sums, and the
# comparison is exact.
two_nodes 4 "PROBNAS_FAIL_AT=" -- "${ARGS[@]}" --run.threads 1 --run.dir "$work/n2" > "$work/n2.log" 2>&1 \
  || { cat "$work/n2.log"; fail "the 2-node job failed"; }
one_node 4 "${ARGS[@]}" --run.threads 1 --run.dir "$work/n1" > "$work/n1.log" 2>&1 || { cat "$work/n1.log"; fail "the 1-node job failed"; }
cmp -s <(timeless "$work/n2") <(timeless "$work/n1") || { diff <(timeless "$work/n2") <(timeless "$work/n1"); fail "4 ranks on 2 nodes differ from 4 ranks on 1 node"; }
cmp -s "$work/n2/genotype.json" "$work/n1/genotype.json" || fail "genotype.json differs between 2 nodes and 1 node"
echo "ok: metrics and genotype equal to the 1-node run's"

echo "== 3. SIGTERM on the second node, checkpoint, resume across the nodes"
set +e
two_nodes 4 "PROBNAS_FAIL_AT=3:5:TERM" -- "${ARGS[@]}" --run.threads 1 --run.dir "$work/cut" > "$work/cut.log" 2>&1
rc=$?
set -e
[ $rc = 75 ] || { cat "$work/cut.log"; fail "expected exit code 75 after the SIGTERM, got $rc"; }
grep -q "checkpointed at step 6 of 10" "$work/cut.log" || { cat "$work/cut.log"; fail "no checkpoint at step 6"; }
two_nodes 4 "PROBNAS_FAIL_AT=" -- "${ARGS[@]}" --run.threads 1 --run.dir "$work/cut" > "$work/resumed.log" 2>&1 \
  || { cat "$work/resumed.log"; fail "the resumed 2-node job failed"; }
grep -q "resuming from $work/cut/checkpoints/ckpt-6.h5" "$work/resumed.log" || { cat "$work/resumed.log"; fail "did not resume from step 6"; }
cmp -s <(timeless "$work/cut") <(timeless "$work/n2") || { diff <(timeless "$work/cut") <(timeless "$work/n2"); fail "the resumed run ends elsewhere than the straight one"; }
cmp -s "$work/cut/genotype.json" "$work/n2/genotype.json" || fail "genotype.json differs after the resume"
echo "ok: checkpointed on a signal from the second node, resumed to the straight run's end"
echo "PASS"
