#!/usr/bin/env bash
# local-slurm.sh - bring up / tear down a throw-away one-node Slurm cluster on
# localhost (munged + slurmctld + slurmd, all state under one folder).
#
# Usage:
#   local-slurm.sh available      exit 0 if slurm-wlm + munge are installed or
#                                 installable with apt-get (else exit 1, so a
#                                 test can skip cleanly)
#   local-slurm.sh install        install slurm-wlm + munge quietly if missing
#   local-slurm.sh start DIR      start a cluster whose every file lives in DIR
#                                 (a fresh folder, created if missing); on
#                                 success prints "export SLURM_CONF=DIR/slurm.conf"
#                                 on stdout (everything else goes to stderr)
#   local-slurm.sh stop DIR       cancel jobs, stop the daemons started by
#                                 "start DIR" (by recorded PID, never by name)
#                                 and any process left in their sessions;
#                                 idempotent
#   local-slurm.sh status DIR     exit 0 if all three daemons of DIR are alive
#
# Environment knobs:
#   LOCAL_SLURM_CPUS     CPUs advertised for the node (default: max(nproc, 8);
#                        more than the real cores is fine: config_overrides)
#   LOCAL_SLURM_MEM_MB   RealMemory of the node in MB (default 4096)
#   LOCAL_SLURM_TIMEOUT  seconds to wait for the node to become idle (default 30)
#   LOCAL_SLURM_NODES    nodes of the cluster (default 1); more than one are
#                        slurmd daemons of their own (Slurm's multiple-slurmd
#                        mode: NodeName=<host>-<i>, one port each) on this host
#   LOCAL_SLURM_CRED_EXPIRE  job credential lifetime in seconds (default 20);
#                        a requeued job is held back cred_expire+1 seconds
#                        unless "scontrol update JobId=J StartTime=now"
#
# Needs root (SlurmUser=SlurmdUser=root).  Written for Debian 12 (Slurm 22.05,
# munge 0.5.15).  Jobs run as root; MPI jobs need OMPI_ALLOW_RUN_AS_ROOT=1 and
# OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1.
set -uo pipefail
set +m   # background jobs must stay in our process group so setsid does not fork

PROG=${0##*/}
log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { log "error: $*"; exit 1; }

SBIN_PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH="$PATH:$SBIN_PATH"

have_all() {
  local b
  for b in munged munge unmunge slurmctld slurmd sinfo srun sbatch scontrol scancel squeue; do
    command -v "$b" >/dev/null 2>&1 || return 1
  done
}

apt_candidate() {   # apt_candidate PKG -> 0 if apt knows an installable version
  local c
  c=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ {print $2; exit}')
  [[ -n "$c" && "$c" != "(none)" ]]
}

cmd_available() {
  have_all && return 0
  [[ $(id -u) -eq 0 ]] || { log "slurm/munge missing and not root: cannot install"; return 1; }
  command -v apt-get >/dev/null 2>&1 || { log "slurm/munge missing and no apt-get"; return 1; }
  if apt_candidate slurm-wlm && apt_candidate munge; then return 0; fi
  # Package lists may be empty on a fresh machine: refresh once and re-check.
  timeout 300 apt-get update -qq >/dev/null 2>&1 || { log "apt-get update failed"; return 1; }
  apt_candidate slurm-wlm && apt_candidate munge && return 0
  log "slurm-wlm/munge not installable"
  return 1
}

cmd_install() {
  have_all && return 0
  [[ $(id -u) -eq 0 ]] || die "install needs root"
  command -v apt-get >/dev/null 2>&1 || die "install needs apt-get"
  local policy=/usr/sbin/policy-rc.d made_policy=0 out rc
  # Keep the packages' init scripts from starting system-wide daemons.
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 0755 "$policy" && made_policy=1
  fi
  out=$(mktemp)
  export DEBIAN_FRONTEND=noninteractive
  {
    timeout 600 apt-get update -qq &&
    timeout 900 apt-get install -y -qq --no-install-recommends \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
      slurm-wlm munge
  } >"$out" 2>&1
  rc=$?
  [[ $made_policy -eq 1 ]] && rm -f "$policy"
  if [[ $rc -ne 0 ]] || ! have_all; then
    tail -n 30 "$out" >&2; rm -f "$out"
    die "installing slurm-wlm munge failed (rc=$rc)"
  fi
  rm -f "$out"
  log "installed slurm-wlm and munge"
}

# ---------------------------------------------------------------- helpers ---

port_in_use() {   # port_in_use PORT
  local p=$1 hex
  hex=$(printf '%04X' "$p")
  # LISTEN (0A) sockets on any address, IPv4 and IPv6.
  if awk -v h=":$hex" '$4 == "0A" && substr($2, length($2) - 4) == h {f=1} END {exit !f}' \
       /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
    return 0
  fi
  # Belt and braces: something accepting connections on loopback?
  (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && return 0
  return 1
}

pick_ports() {    # pick_ports N: prints N consecutive free ports below the ephemeral range
  local n=${1:-2} lo=15000 hi=29990 base _ i ok
  for _ in $(seq 1 200); do
    base=$(( lo + (RANDOM * 32768 + RANDOM) % (hi - lo) ))
    ok=1
    for (( i = 0; i < n; i++ )); do port_in_use $((base + i)) && { ok=0; break; }; done
    (( ok )) && { seq -s ' ' "$base" $((base + n - 1)); return 0; }
  done
  return 1
}

pid_alive() {     # pid_alive PID -> running (a zombie counts as gone)
  [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null || return 1
  local st
  st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 0
  [[ $st != Z ]]
}

pid_is_ours() {   # pid_is_ours PID DIR -> the process' command line mentions DIR
  local pid=$1 dir=$2 cl
  pid_alive "$pid" || return 1
  cl=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ "$cl" == *"$dir/"* ]]
}

tail_logs() {     # tail_logs DIR
  local f
  for f in "$1"/log/*; do
    [[ -s $f ]] || continue
    printf '%s: ----- %s (last 25 lines) -----\n' "$PROG" "$f" >&2
    tail -n 25 "$f" >&2
  done
}

start_daemon() {  # start_daemon DIR NAME CMD... ; records PID in DIR/pids/NAME.pid
  local dir=$1 name=$2; shift 2
  # setsid: own session (so "stop" can sweep leftovers by session id, and the
  # caller's terminal signals do not reach it); stdio detached so a caller
  # doing $(local-slurm.sh start ...) does not hang on our daemons' stdout.
  setsid "$@" </dev/null >>"$dir/log/$name.stdout" 2>&1 &
  local pid=$!
  echo "$pid" >"$dir/pids/$name.pid"
  sleep 0.2
  pid_alive "$pid" || return 1
}

# ------------------------------------------------------------------ start ---

fail_start() {    # fail_start DIR MESSAGE
  log "error: $2"
  tail_logs "$1"
  cmd_stop "$1" >/dev/null 2>&1 || true
  exit 1
}

cmd_start() {
  local dir=${1:-}
  [[ -n $dir ]] || die "usage: $PROG start DIR"
  [[ $(id -u) -eq 0 ]] || die "start needs root (SlurmUser=root)"
  have_all || die "slurm-wlm/munge not installed (run: $PROG install)"
  mkdir -p "$dir" || die "cannot create $dir"
  dir=$(cd "$dir" && pwd -P) || die "cannot resolve $dir"
  if [[ -f $dir/pids/slurmctld.pid ]] && pid_is_ours "$(cat "$dir/pids/slurmctld.pid")" "$dir"; then
    die "a cluster is already running in $dir (run: $PROG stop $dir)"
  fi
  # munged refuses group/other-writable folders on the way to its socket/log.
  chmod go-w "$dir"
  mkdir -p "$dir"/{log,pids,state,spool,munge} || die "cannot populate $dir"
  chmod 0755 "$dir"/{log,pids,state,spool,munge}

  # Interrupted half-way: take down whatever was started.
  trap 'fail_start "$dir" "interrupted"' INT TERM HUP
  local t0=$SECONDS
  local host cpus mem timeout cred_expire ports ctld_port slurmd_port
  host=$(hostname -s 2>/dev/null || hostname)
  [[ -n $host ]] || die "cannot determine short hostname"
  cpus=${LOCAL_SLURM_CPUS:-$(nproc)}
  [[ -n ${LOCAL_SLURM_CPUS:-} ]] || (( cpus >= 8 )) || cpus=8
  mem=${LOCAL_SLURM_MEM_MB:-4096}
  timeout=${LOCAL_SLURM_TIMEOUT:-30}
  cred_expire=${LOCAL_SLURM_CRED_EXPIRE:-20}

  # -- munge ---------------------------------------------------------------
  local key=$dir/munge/munge.key sock=$dir/munge/munge.socket
  if [[ ! -s $key ]]; then
    if ! mungekey --create --keyfile="$key" >/dev/null 2>&1; then
      dd if=/dev/urandom of="$key" bs=1024 count=1 status=none || die "cannot create munge key"
    fi
  fi
  chmod 0400 "$key"
  rm -f "$sock" "$sock.lock"
  start_daemon "$dir" munged munged --foreground --force \
      --socket="$sock" --key-file="$key" \
      --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" \
      --seed-file="$dir/munge/munged.seed" ||
    fail_start "$dir" "munged exited at once"
  local _ ok=0
  for _ in $(seq 1 100); do
    if [[ -S $sock ]] && munge -n -S "$sock" 2>/dev/null | unmunge -S "$sock" >/dev/null 2>&1; then
      ok=1; break
    fi
    pid_alive "$(cat "$dir/pids/munged.pid")" || break
    sleep 0.1
  done
  [[ $ok -eq 1 ]] || fail_start "$dir" "munged did not come up on $sock"

  # -- slurm.conf ------------------------------------------------------------
  local nodes=${LOCAL_SLURM_NODES:-1} node_lines="" node_names=() i name
  [[ $nodes =~ ^[1-9][0-9]*$ ]] || fail_start "$dir" "LOCAL_SLURM_NODES=$nodes is not a positive number"
  ports=$(pick_ports $((nodes + 1))) || fail_start "$dir" "no free TCP ports found"
  read -r ctld_port slurmd_port _ <<<"$ports"
  if (( nodes == 1 )); then
    node_names=("$host")
    node_lines="NodeName=$host NodeAddr=127.0.0.1 NodeHostname=$host CPUs=$cpus Boards=1 SocketsPerBoard=1 CoresPerSocket=$cpus ThreadsPerCore=1 RealMemory=$mem State=UNKNOWN"
  else
    for (( i = 1; i <= nodes; i++ )); do
      node_names+=("$host-$i")
      node_lines+="NodeName=$host-$i NodeAddr=127.0.0.1 NodeHostname=$host Port=$((slurmd_port + i - 1)) CPUs=$cpus Boards=1 SocketsPerBoard=1 CoresPerSocket=$cpus ThreadsPerCore=1 RealMemory=$mem State=UNKNOWN"$'\n'
    done
  fi
  local node_list tmp_fs=""
  node_list=$(IFS=,; echo "${node_names[*]}")
  # Each node its own TmpFS: Slurm's PMIx plugin makes <TmpFS>/spmix_appdir_<uid>_<job>.<step> on
  # every node, and nodes on one host would collide in /tmp.
  if (( nodes > 1 )); then
    tmp_fs="TmpFS=$dir/tmp/%n"
    for name in "${node_names[@]}"; do mkdir -p "$dir/tmp/$name"; done
  fi
  : >"$dir/plugstack.conf"   # keep /etc/slurm/plugstack.conf out of the way
  cat >"$dir/slurm.conf" <<EOF
# Generated by $PROG for a throw-away one-node test cluster.
ClusterName=probnas-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/munge
CredType=cred/munge
# cred_expire also sets how long a requeued job is held back (default 120 s).
AuthInfo=socket=$sock,cred_expire=$cred_expire
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/pids/slurmctld.daemon.pid
SlurmdPidFile=$dir/pids/slurmd-%n.daemon.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
MailProg=/bin/true
PlugStackConfig=$dir/plugstack.conf
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# Advertise LOCAL_SLURM_CPUS even where the machine has fewer cores.
SlurmdParameters=config_overrides
ReturnToService=2
JobRequeue=1
KillWait=5
InactiveLimit=0
MinJobAge=300
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
# Schedule batch jobs at submission (default: up to 3 s later).
SchedulerParameters=batch_sched_delay=0
$tmp_fs
$node_lines
PartitionName=debug Nodes=$node_list Default=YES MaxTime=INFINITE OverSubscribe=YES State=UP
EOF
  export SLURM_CONF=$dir/slurm.conf

  # -- slurmctld + slurmd ----------------------------------------------------
  start_daemon "$dir" slurmctld slurmctld -D -f "$dir/slurm.conf" ||
    fail_start "$dir" "slurmctld exited at once"
  for name in "${node_names[@]}"; do
    mkdir -p "$dir/spool/$name"
    start_daemon "$dir" "slurmd-$name" slurmd -D -f "$dir/slurm.conf" -N "$name" ||
      fail_start "$dir" "slurmd of node $name exited at once"
  done

  local state="" deadline=$(( SECONDS + timeout ))
  while (( SECONDS < deadline )); do
    pid_alive "$(cat "$dir/pids/slurmctld.pid")" || fail_start "$dir" "slurmctld died"
    for name in "${node_names[@]}"; do
      pid_alive "$(cat "$dir/pids/slurmd-$name.pid")" || fail_start "$dir" "slurmd of node $name died"
    done
    state=$(timeout 5 sinfo -h -N -o %T 2>/dev/null | sort | uniq -c | awk '{print $1 " " $2}' | paste -sd, -)
    case $state in
      "$nodes idle") break ;;
      *drain*|*down*|*fail*) fail_start "$dir" "node state $state: $(timeout 5 sinfo -h -R 2>/dev/null)" ;;
    esac
    sleep 0.5
  done
  [[ $state == "$nodes idle" ]] || fail_start "$dir" "nodes not idle after ${timeout}s (states: '${state:-no answer}')"

  echo "export SLURM_CONF=$dir/slurm.conf" >"$dir/env.sh"
  log "cluster up in $(( SECONDS - t0 ))s: node(s) $node_list ($cpus CPUs each), ports $ctld_port/$slurmd_port.., dir $dir"
  echo "export SLURM_CONF=$dir/slurm.conf"
}

# ------------------------------------------------------------------- stop ---

# Kill PIDS with TERM, wait up to $1 seconds, then KILL whatever is left.
term_then_kill() {
  local wait_s=$1; shift
  local p left _
  (( $# )) || return 0
  kill -TERM "$@" 2>/dev/null
  for _ in $(seq 1 $(( wait_s * 10 ))); do
    left=0
    for p in "$@"; do pid_alive "$p" && left=1; done
    [[ $left -eq 0 ]] && return 0
    sleep 0.1
  done
  kill -KILL "$@" 2>/dev/null
  sleep 0.2
}

# leftovers DIR -> PIDs of processes that the cluster in DIR started and that
# are still alive.  slurmd starts every slurmstepd, and slurmstepd every job
# process, with SLURM_CONF=DIR/slurm.conf in the environment, each slurmstepd
# in a session of its own that its job processes share.  So: processes with
# that variable, plus the members of their sessions, but never a process in
# the session of this script or of any of its ancestors (the caller, which
# may export the same SLURM_CONF).
leftovers() {
  local dir=$1 p marked="" safe=" " q
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    grep -qzxF "SLURM_CONF=$dir/slurm.conf" "/proc/$p/environ" 2>/dev/null &&
      marked+=" $p"
  done
  [[ -n $marked ]] || return 0
  q=$$
  while [[ -n $q && $q != 0 ]]; do
    safe+="$q "
    q=$(awk '{print $4}' "/proc/$q/stat" 2>/dev/null)
  done
  ps -eo pid=,sid= 2>/dev/null | awk -v m="$marked" -v safe="$safe" '
    BEGIN { n = split(m, a, " "); for (i = 1; i <= n; i++) hit[a[i]] = 1
            n = split(safe, a, " "); for (i = 1; i <= n; i++) anc[a[i]] = 1 }
    { pid[NR] = $1; sid[$1] = $2 }
    END {
      for (p in anc) if (p in sid) keep[sid[p]] = 1
      for (p in hit) if ((p in sid) && !(sid[p] in keep)) sess[sid[p]] = 1
      for (i = 1; i <= NR; i++) {
        p = pid[i]
        if (((p in hit) || (sid[p] in sess)) && !(sid[p] in keep) && !(p in anc)) print p
      }
    }'
}

cmd_stop() {
  local dir=${1:-}
  [[ -n $dir ]] || die "usage: $PROG stop DIR"
  [[ -d $dir ]] || return 0
  dir=$(cd "$dir" && pwd -P) || return 0
  [[ -d $dir/pids ]] || return 0

  local name pid ctld="" ours=() file
  for file in "$dir"/pids/slurmd-*.pid "$dir/pids/slurmctld.pid" "$dir/pids/munged.pid"; do
    [[ $file == *.daemon.pid ]] && continue
    name=$(basename "$file" .pid)
    pid=$(cat "$file" 2>/dev/null) || continue
    [[ $pid =~ ^[0-9]+$ ]] || continue
    if pid_is_ours "$pid" "$dir"; then
      ours+=("$pid")
      [[ $name == slurmctld ]] && ctld=$pid
    fi
  done

  # Cancel jobs first so that slurmstepd and job processes go away cleanly.
  if [[ -n $ctld && -f $dir/slurm.conf ]]; then
    export SLURM_CONF=$dir/slurm.conf
    timeout 10 scancel --quiet -u "$(id -un)" >/dev/null 2>&1 || true
    # Wait (KillWait=5 s at most) until no job is left, completing included.
    local _
    for _ in $(seq 1 50); do
      [[ -z $(timeout 5 squeue -h -o %i 2>/dev/null | head -n 1) ]] && break
      sleep 0.2
    done
  fi

  # Daemons, all at once: each needs 1-2 s to shut down on SIGTERM.
  (( ${#ours[@]} )) && term_then_kill 10 "${ours[@]}"

  # Leftovers (slurmstepd and job tasks when scancel could not run, e.g.
  # because slurmctld had died).
  local left
  left=$(leftovers "$dir")
  if [[ -n $left ]]; then
    log "killing leftover processes: ${left//$'\n'/ }"
    # shellcheck disable=SC2086
    term_then_kill 3 $left
  fi

  rm -f "$dir"/pids/*.pid "$dir/munge/munge.socket" "$dir/munge/munge.socket.lock"
  return 0
}

cmd_status() {
  local dir=${1:-} name
  [[ -n $dir && -d $dir ]] || return 1
  dir=$(cd "$dir" && pwd -P)
  local file
  for file in "$dir/pids/munged.pid" "$dir/pids/slurmctld.pid" "$dir"/pids/slurmd-*.pid; do
    [[ $file == *.daemon.pid ]] && continue
    pid_is_ours "$(cat "$file" 2>/dev/null)" "$dir" || return 1
  done
}

case ${1:-} in
  available) cmd_available ;;
  install)   cmd_install ;;
  start)     cmd_start "${2:-}" ;;
  stop)      cmd_stop "${2:-}" ;;
  status)    cmd_status "${2:-}" ;;
  *) echo "usage: $PROG {available|install|start DIR|stop DIR|status DIR}" >&2; exit 2 ;;
esac
