#!/usr/bin/env bash
# Single-node SLURM cluster (slurmctld + slurmd + slurmdbd/MariaDB accounting)
# for Bractivate's cluster tests and CI.
#
#   tests/cluster/slurm.sh start    install packages if missing, write configs,
#                                   start daemons, register cluster/account,
#                                   wait until the node is idle (idempotent;
#                                   also recovers from a crash)
#   tests/cluster/slurm.sh stop     cancel jobs, stop every daemon cleanly
#   tests/cluster/slurm.sh status   daemon pids + sinfo/sacctmgr/sacct health
#                                   (exit 0 only when the cluster is usable)
#
# Needs root (writes /etc/slurm, /etc/munge, starts daemons) and a Debian/Ubuntu
# apt. Does not need systemd: every daemon is started by hand.
#
# Environment knobs (defaults in brackets):
#   BRACTIVATE_SLURM_CLUSTER   cluster name                     [bractivate]
#   BRACTIVATE_SLURM_ACCOUNT   account the test jobs are run in [bractivate]
#   BRACTIVATE_SLURM_PARTITION default partition                [debug]
#   BRACTIVATE_SLURM_GPU_PARTITION second partition, same node  [gpu]
#   BRACTIVATE_SLURM_GPUS      number of fake GPUs on the node  [2]
#   BRACTIVATE_SLURM_USERS     extra users to add to the account (space separated)
#   BRACTIVATE_SLURM_TIMEOUT   seconds to wait for each daemon / the idle node [90]
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CLUSTER=${BRACTIVATE_SLURM_CLUSTER:-bractivate}
ACCOUNT=${BRACTIVATE_SLURM_ACCOUNT:-bractivate}
PARTITION=${BRACTIVATE_SLURM_PARTITION:-debug}
GPU_PARTITION=${BRACTIVATE_SLURM_GPU_PARTITION:-gpu}
NGPUS=${BRACTIVATE_SLURM_GPUS:-2}
TIMEOUT=${BRACTIVATE_SLURM_TIMEOUT:-90}
PACKAGES=(slurm-wlm slurmdbd munge mariadb-server)

ETC=/etc/slurm
STATE=/var/lib/slurm
LOGDIR=/var/log/slurm
RUNDIR=/run/slurm
FAKEGPU_DIR=$STATE/fake-gpu
DBSOCK=/run/mysqld/mysqld.sock
DBPID=/run/mysqld/mysqld.pid
NODE=$(hostname -s)

log() { printf '[slurm.sh] %s\n' "$*"; }
die() { printf '[slurm.sh] ERROR: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------- timing
T_START=$(date +%s.%N)
T_LAST=$T_START
mark() { # mark <phase>: print the time spent since the previous mark
    local now
    now=$(date +%s.%N)
    awk -v a="$T_LAST" -v b="$now" -v p="$1" 'BEGIN { printf "[slurm.sh] %-28s %6.1f s\n", p, b - a }'
    T_LAST=$now
}
total() {
    awk -v a="$T_START" -v b="$(date +%s.%N)" -v p="$1" 'BEGIN { printf "[slurm.sh] %-28s %6.1f s\n", p, b - a }'
}

# ----------------------------------------------------------- processes
# alive <pid> <comm>: pid exists, is not a zombie and has that process name.
alive() {
    local pid=$1 comm=$2 stat
    [[ -r /proc/$pid/stat ]] || return 1
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    # /proc/PID/stat is "PID (comm) STATE ..."; zombies (Z) wait for PID 1
    # to reap them, which can take a while in containers.
    [[ ${stat#*) } != Z* && ${stat#*) } != X* ]] || return 1
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$comm" ]]
}

# pid_of <comm> <pidfile>: pid of a running daemon, from its pid file when
# that is valid, else by exact process name (e.g. after the pid file was lost).
pid_of() {
    local comm=$1 pidfile=$2 pid=""
    if [[ -s $pidfile ]]; then
        pid=$(tr -dc '0-9' <"$pidfile")
        if [[ -n $pid ]] && alive "$pid" "$comm"; then
            echo "$pid"
            return 0
        fi
    fi
    for pid in $(pgrep -x "$comm" || true); do
        if alive "$pid" "$comm"; then
            echo "$pid"
            return 0
        fi
    done
    return 0
}

running() { [[ -n $(pid_of "$1" "$2") ]]; }

# stop_daemon <comm> <pidfile>: SIGTERM, wait, then SIGKILL.
stop_daemon() {
    local comm=$1 pidfile=$2 pid i
    pid=$(pid_of "$comm" "$pidfile")
    if [[ -z $pid ]]; then
        rm -f "$pidfile"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 150; i++)); do
        alive "$pid" "$comm" || break
        sleep 0.1
    done
    if alive "$pid" "$comm"; then
        log "$comm ($pid) ignored SIGTERM for 15 s, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    rm -f "$pidfile"
    log "stopped $comm ($pid)"
}

# wait_for <seconds> <description> <command...>
wait_for() {
    local secs=$1 what=$2 deadline
    shift 2
    deadline=$((SECONDS + secs))
    while ((SECONDS < deadline)); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.25
    done
    log "timed out after ${secs}s waiting for $what"
    return 1
}

diagnostics() {
    set +e
    echo "=================== diagnostics ===================" >&2
    for d in mariadbd mysqld_safe munged slurmdbd slurmctld slurmd; do
        printf '%-12s %s\n' "$d" "$(pgrep -x "$d" | tr '\n' ' ')" >&2
    done
    echo "--- sinfo" >&2
    sinfo -N -l 2>&1 | sed 's/^/  /' >&2
    echo "--- scontrol show node $NODE" >&2
    scontrol show node "$NODE" 2>&1 | sed 's/^/  /' >&2
    for f in $LOGDIR/slurmctld.log $LOGDIR/slurmd.log $LOGDIR/slurmdbd.log \
        /var/log/mysql/error.log /var/log/munge/munged.log; do
        [[ -f $f ]] || continue
        echo "--- tail $f" >&2
        tail -n 25 "$f" | sed 's/^/  /' >&2
    done
    echo "===================================================" >&2
}

fail() {
    diagnostics
    die "$*"
}

# ------------------------------------------------------------- install
install_packages() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if ((${#missing[@]} == 0)); then
        return 0
    fi
    command -v apt-get >/dev/null || die "packages missing (${missing[*]}) and no apt-get"
    log "installing ${missing[*]}"
    # Keep the packages' init scripts/units from starting daemons on systemd
    # hosts (we start everything by hand below).
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [[ ! -e $policy ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        made_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null || apt-get update
    apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${missing[@]}" >/dev/null ||
        apt-get install -y --no-install-recommends "${missing[@]}"
    ((made_policy)) && rm -f "$policy"
    return 0
}

# ------------------------------------------------------------- configs
CONFIG_CHANGED=0

# install_file <src> <dst> <mode> <owner>: replace dst only if content differs.
install_file() {
    local src=$1 dst=$2 mode=$3 owner=$4
    if [[ ! -f $dst ]] || ! cmp -s "$src" "$dst"; then
        install -m "$mode" -o "${owner%%:*}" -g "${owner##*:}" "$src" "$dst"
        CONFIG_CHANGED=1
        log "wrote $dst"
    else
        chmod "$mode" "$dst"
        chown "$owner" "$dst"
    fi
    rm -f "$src"
}

render() { # render <template> <out>: replace @KEY@ placeholders
    sed -e "s|@CLUSTER@|$CLUSTER|g" -e "s|@NODE@|$NODE|g" \
        -e "s|@PARTITION@|$PARTITION|g" -e "s|@GPU_PARTITION@|$GPU_PARTITION|g" -e "s|@CPUS@|$CPUS|g" \
        -e "s|@SOCKETS@|$SOCKETS|g" -e "s|@CORES@|$CORES|g" \
        -e "s|@THREADS@|$THREADS|g" -e "s|@MEM_MB@|$MEM_MB|g" \
        -e "s|@NGPUS@|$NGPUS|g" -e "s|@DBPASS@|$DBPASS|g" \
        "$1" >"$2"
}

write_configs() {
    install -d -m 755 "$ETC" "$STATE" "$FAKEGPU_DIR"
    install -d -m 755 -o slurm -g slurm "$LOGDIR" "$RUNDIR" "$STATE/slurmctld"
    install -d -m 755 "$STATE/slurmd"

    # Node shape from the hardware slurmd sees (topology must match or the
    # node is drained); keep a little memory back for the head process + DB.
    local hw
    hw=$(slurmd -C | head -n1)
    CPUS=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$hw")
    SOCKETS=$(sed -n 's/.*SocketsPerBoard=\([0-9]*\).*/\1/p' <<<"$hw")
    CORES=$(sed -n 's/.*CoresPerSocket=\([0-9]*\).*/\1/p' <<<"$hw")
    THREADS=$(sed -n 's/.*ThreadsPerCore=\([0-9]*\).*/\1/p' <<<"$hw")
    local real
    real=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
    MEM_MB=$((real - (real / 8 < 2048 ? real / 8 : 2048)))

    # DB password: keep the one already in use, else make one up.
    DBPASS=""
    if [[ -f $ETC/slurmdbd.conf ]]; then
        DBPASS=$(sed -n 's/^StoragePass=//p' "$ETC/slurmdbd.conf")
    fi
    [[ -n $DBPASS ]] || DBPASS=$(head -c 18 /dev/urandom | od -An -tx1 | tr -d ' \n')

    # Fake GPU device files.
    local gres_lines="" i
    for ((i = 0; i < NGPUS; i++)); do
        ln -sfn /dev/null "$FAKEGPU_DIR/gpu$i"
        gres_lines+="NodeName=$NODE Name=gpu File=$FAKEGPU_DIR/gpu$i"$'\n'
    done

    local tmp
    tmp=$(mktemp)
    render "$HERE/slurm.conf.in" "$tmp"
    install_file "$tmp" "$ETC/slurm.conf" 644 root:root
    tmp=$(mktemp)
    awk -v lines="$gres_lines" '{ if ($0 == "@GRES_LINES@") printf "%s", lines; else print }' \
        "$HERE/gres.conf.in" >"$tmp"
    install_file "$tmp" "$ETC/gres.conf" 644 root:root
    tmp=$(mktemp)
    render "$HERE/slurmdbd.conf.in" "$tmp"
    install_file "$tmp" "$ETC/slurmdbd.conf" 600 slurm:slurm
    # slurmctld refuses to start if ClusterName differs from this saved file.
    if [[ -f $STATE/slurmctld/clustername ]] &&
        [[ $(cat "$STATE/slurmctld/clustername") != "$CLUSTER" ]]; then
        rm -f "$STATE/slurmctld/clustername"
    fi
}

# ------------------------------------------------------------- daemons
db_ping() { mariadb-admin --socket="$DBSOCK" -uroot ping; }

start_mariadb() {
    if db_ping >/dev/null 2>&1; then
        log "mariadb already running"
    else
        install -d -m 755 -o mysql -g mysql /run/mysqld /var/log/mysql
        rm -f "$DBSOCK" "$DBPID"
        if [[ ! -d /var/lib/mysql/mysql ]]; then
            log "initialising MariaDB data directory"
            mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
        fi
        # --skip-networking: Unix socket only, nothing listens on TCP.
        setsid -f mysqld_safe --user=mysql --skip-networking --socket="$DBSOCK" \
            --pid-file="$DBPID" --log-error=/var/log/mysql/error.log \
            --innodb-lock-wait-timeout=900 </dev/null >/dev/null 2>&1
        wait_for "$TIMEOUT" "MariaDB" db_ping || fail "MariaDB did not start"
        log "mariadb started"
    fi
    mariadb --socket="$DBSOCK" -uroot <<SQL
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DBPASS';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$DBPASS';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
SQL
}

munge_ok() { munge -n </dev/null | unmunge >/dev/null; }

start_munge() {
    if munge_ok 2>/dev/null; then
        log "munged already running"
        return 0
    fi
    if [[ ! -s /etc/munge/munge.key ]]; then
        mungekey --create --keyfile=/etc/munge/munge.key
    fi
    chown munge:munge /etc/munge/munge.key
    chmod 400 /etc/munge/munge.key
    install -d -m 755 -o munge -g munge /run/munge
    stop_daemon munged /run/munge/munged.pid # a hung one that does not answer
    # --force: start even if a crashed munged left its socket/lock behind.
    runuser -u munge -- /usr/sbin/munged --force
    wait_for "$TIMEOUT" munged munge_ok || fail "munged did not start"
    log "munged started"
}

dbd_ok() { sacctmgr -n -P list cluster format=cluster; }

start_slurmdbd() {
    if running slurmdbd "$RUNDIR/slurmdbd.pid" && ((CONFIG_CHANGED == 0)); then
        log "slurmdbd already running"
    else
        stop_daemon slurmdbd "$RUNDIR/slurmdbd.pid"
        slurmdbd
        log "slurmdbd started"
    fi
    wait_for "$TIMEOUT" slurmdbd dbd_ok || fail "slurmdbd does not answer sacctmgr"
}

start_slurmctld() {
    if running slurmctld "$RUNDIR/slurmctld.pid" && ((CONFIG_CHANGED == 0)); then
        log "slurmctld already running"
    else
        stop_daemon slurmctld "$RUNDIR/slurmctld.pid"
        # -c: start from clean state, so jobs of a crashed run do not come back.
        slurmctld -c
        log "slurmctld started"
    fi
    wait_for "$TIMEOUT" slurmctld scontrol ping || fail "slurmctld does not answer"
}

start_slurmd() {
    if running slurmd "$RUNDIR/slurmd.pid" && ((CONFIG_CHANGED == 0)); then
        log "slurmd already running"
    else
        stop_daemon slurmd "$RUNDIR/slurmd.pid"
        slurmd -N "$NODE"
        log "slurmd started"
    fi
}

node_state() { sinfo -h -n "$NODE" -o '%T' 2>/dev/null | head -n1; }

node_usable() { [[ $(node_state) =~ ^(idle|mixed|allocated|completing)$ ]]; }

wait_node() {
    local st deadline=$((SECONDS + TIMEOUT))
    while ((SECONDS < deadline)); do
        st=$(node_state)
        case $st in
        idle | mixed | allocated | completing)
            log "node $NODE is $st"
            return 0
            ;;
        drained | draining | drain | down)
            # e.g. left over from an earlier crash; ReturnToService=2 usually
            # handles it, this catches "Kill task failed"-style drains.
            scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true
            ;;
        esac
        sleep 0.5
    done
    fail "node $NODE not idle after ${TIMEOUT}s (state: ${st:-unknown})"
}

sacctmgr_has() { # sacctmgr_has <entity> <name> [filters...]
    local entity=$1 name=$2
    shift 2
    sacctmgr -n -P list "$entity" "$@" format="$entity" 2>/dev/null | grep -qx "$name"
}

register_accounting() {
    sacctmgr_has cluster "$CLUSTER" ||
        sacctmgr -i add cluster "$CLUSTER" >/dev/null
    sacctmgr_has account "$ACCOUNT" ||
        sacctmgr -i add account "$ACCOUNT" cluster="$CLUSTER" \
            description="Bractivate test account" organization=bractivate >/dev/null
    local u
    # Word splitting intended: BRACTIVATE_SLURM_USERS is a space-separated list.
    # shellcheck disable=SC2086
    for u in $(printf '%s\n' root "$(id -un)" ${SUDO_USER:-} ${BRACTIVATE_SLURM_USERS:-} | sort -u); do
        id "$u" >/dev/null 2>&1 || continue
        if ! sacctmgr -n -P list assoc user="$u" account="$ACCOUNT" cluster="$CLUSTER" \
            format=user 2>/dev/null | grep -qx "$u"; then
            sacctmgr -i add user "$u" account="$ACCOUNT" cluster="$CLUSTER" \
                defaultaccount="$ACCOUNT" >/dev/null
            log "added user $u to account $ACCOUNT"
        fi
    done
}

# ------------------------------------------------------------- actions
do_start() {
    [[ $EUID -eq 0 ]] || die "must run as root (try: sudo $0 start)"
    install_packages
    mark "packages"
    write_configs
    mark "configs"
    start_mariadb
    mark "mariadb"
    start_munge
    mark "munged"
    start_slurmdbd
    # The cluster must exist in the DB before slurmctld registers with it.
    sacctmgr_has cluster "$CLUSTER" || sacctmgr -i add cluster "$CLUSTER" >/dev/null
    mark "slurmdbd"
    start_slurmctld
    mark "slurmctld"
    start_slurmd
    wait_node
    mark "slurmd + node idle"
    register_accounting
    # Jobs that were running when the cluster last crashed stay "RUNNING" in
    # the accounting DB; close them (no-op when there are none).
    sacctmgr -i show runawayjobs >/dev/null 2>&1 || true
    mark "accounts"
    total "start total"
    log "cluster '$CLUSTER' up: partitions '$PARTITION' (default) + '$GPU_PARTITION', account '$ACCOUNT', $CPUS CPUs, ${MEM_MB} MB, gpu:$NGPUS (fake)"
}

do_stop() {
    [[ $EUID -eq 0 ]] || die "must run as root (try: sudo $0 stop)"
    if scontrol ping >/dev/null 2>&1; then
        local jobs
        jobs=$(squeue -h -o '%A' 2>/dev/null | tr '\n' ' ')
        if [[ -n ${jobs// /} ]]; then
            log "cancelling jobs: $jobs"
            # shellcheck disable=SC2086
            scancel $jobs 2>/dev/null || true
            # shellcheck disable=SC2016  # expanded by the inner bash
            wait_for 20 "jobs to end" bash -c '[[ -z $(squeue -h -o %A -t R,CG) ]]' || true
        fi
    fi
    stop_daemon slurmd "$RUNDIR/slurmd.pid"
    # Job step daemons of cancelled/killed jobs.
    local p
    for p in $(pgrep -x slurmstepd || true); do
        kill -KILL "$p" 2>/dev/null || true
    done
    stop_daemon slurmctld "$RUNDIR/slurmctld.pid"
    stop_daemon slurmdbd "$RUNDIR/slurmdbd.pid"
    stop_daemon munged /run/munge/munged.pid
    if db_ping >/dev/null 2>&1; then
        mariadb-admin --socket="$DBSOCK" -uroot shutdown && log "stopped mariadb"
    fi
    stop_daemon mysqld_safe /nonexistent
    stop_daemon mariadbd "$DBPID"
    total "stop total"
}

do_status() {
    local rc=0 d pf
    for d in mariadbd:$DBPID munged:/run/munge/munged.pid slurmdbd:$RUNDIR/slurmdbd.pid \
        slurmctld:$RUNDIR/slurmctld.pid slurmd:$RUNDIR/slurmd.pid; do
        pf=${d#*:}
        d=${d%%:*}
        if running "$d" "$pf"; then
            printf '%-10s running (pid %s)\n' "$d" "$(pid_of "$d" "$pf")"
        else
            printf '%-10s NOT running\n' "$d"
            rc=1
        fi
    done
    echo "--- sinfo"
    sinfo -N -o '%N %P %T %c %m %G' 2>&1 || rc=1
    node_usable || {
        echo "node $NODE is not usable (state: $(node_state))"
        rc=1
    }
    echo "--- associations"
    sacctmgr -n list assoc format=cluster,account,user 2>&1 || rc=1
    echo "--- sacct (last hour)"
    sacct -a -X -S now-1hours -o JobID,JobName%50,Comment%30,Account,State,ExitCode,Elapsed 2>&1 | tail -n 15 || rc=1
    if ((rc == 0)); then echo "cluster healthy"; else echo "cluster NOT healthy"; fi
    return $rc
}

case ${1:-} in
start) do_start ;;
stop) do_stop ;;
status) do_status ;;
restart)
    do_stop
    do_start
    ;;
*)
    echo "usage: $0 start|stop|status|restart" >&2
    exit 2
    ;;
esac
