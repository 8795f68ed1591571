#!/usr/bin/env bash
# The train_cell rule's command: wait for the machine's cell lock *before* any Python starts,
# then run the cell's job with the lock held (inherited as file descriptor 9).
#
#   scripts/train_cell.sh LOCK OUTPUT LOG PYTHON ARGS...
#
# LOCK: the lock file, or "none" (train.exclusive: false); OUTPUT and LOG: the job's record and
# log; PYTHON: the interpreter of train_cell.py (beside this file): the rule's conda env's with
# --sdm conda, else Snakemake's own; ARGS: those of train_cell.py (the rule's request and how
# to run it). Everything else is train_cell.py's.
#
# Waiting costs no CPU (flock blocks), so while one cell's clock runs, the next cell's job is
# only this shell, asleep: no Python start, no Snakemake preamble, no import touches the timed
# epoch. The moment the lock frees, the next job runs. Every 10 s of waiting it says who holds
# the lock (the holder writes its pid, user and cell into the file) in the cell's log, and also
# on the terminal when the holder is another user's cell.
set -euo pipefail
lock=$1 output=$2 log=$3 python=$4
shift 4
run=("$python" "$(cd "$(dirname "$0")" && pwd)/train_cell.py" --output "$output" --log "$log" "$@")
if [ "$lock" = none ]; then
    exec "${run[@]}" --no-exclusive
fi
# An orphaned job of a killed run that still owns this cell's output (and may hold the cell
# lock for a long time) is stopped by train_cell.py (run.lock.own_output), which then takes the
# cell lock itself: do not wait for the lock here then.
owner="$(dirname "$output")/.$(basename "$output").owner"
if [ -e "$owner" ] && ! flock --nonblock --shared "$owner" true; then
    exec "${run[@]}"
fi
# The lock file is shared by every user of the machine: create it world-writable once, and
# otherwise open it without O_CREAT (which sticky /tmp refuses on another user's file).
if [ ! -e "$lock" ]; then
    (umask 0 && : >>"$lock") 2>/dev/null || true
fi
exec 9<"$lock"
waited=0
me=$(id -un 2>/dev/null || id -u)
while :; do
    status=0
    flock --wait 10 9 || status=$?
    if [ "$status" -eq 0 ]; then
        break
    elif [ "$status" -ne 1 ]; then  # not a timeout: say so, never spin
        echo "speedlimit: cannot lock the machine's cell lock $lock (flock exit $status)" >&2
        exit "$status"
    fi
    waited=$((waited + 10))
    holder=$(head -c 300 "$lock" 2>/dev/null | head -n 1) || holder=
    notice="speedlimit: waited ${waited} s for the machine's cell lock $lock; held by:"
    notice="$notice ${holder:-unknown (a holder that did not say)}"
    echo "$notice" >>"$log"
    case "$holder" in
    *", user $me, "*) ;;
    *) echo "$notice" >&2 ;;
    esac
done
exec "${run[@]}" --lock-held "$(date +%s.%N)"
