#!/bin/bash
# run.sh CASE WEFTPROF BINDIR — one weftprof test (registered with ctest as
# weftprof_CASE).  Each case starts its own target programs from BINDIR,
# profiles them, and checks behaviour, never speed: the functions found, a
# loose share threshold, the exit code, and the target's state afterwards
# (running, not stopped, TracerPid 0, still making progress).  Every process
# started here is SIGKILLed on exit, whatever happens.
set -u
case=$1 wp=$2 bin=$3
. "$(dirname "${BASH_SOURCE[0]}")/../../../tests/harness.sh" weftprof-test

# start NAME CMD...: runs CMD in the background (stdin from $tmp/NAME.in if
# it exists), waits until it prints "ready"; sets $tpid.
start() {
    local name=$1; shift
    if [ -p "$tmp/$name.in" ]; then
        "$@" > "$tmp/$name.out" 2>&1 <> "$tmp/$name.in" &
    else
        "$@" > "$tmp/$name.out" 2>&1 < /dev/null &
    fi
    tpid=$!
    kids+=("$tpid")
    for _ in $(seq 500); do
        grep -q ready "$tmp/$name.out" 2>/dev/null && return 0
        kill -0 "$tpid" 2>/dev/null || fail "$name died before it was ready"
        sleep 0.01
    done
    fail "$name never got ready"
}

field() { awk -v k="$2:" '$1 == k { print $2; exit }' "/proc/$1/status" 2>/dev/null; }

# untraced PID: the process and each of its threads is neither stopped nor
# traced (checked a few times: a detached thread may still be waking up).
untraced() {
    local pid=$1 bad=""
    for _ in $(seq 50); do
        bad=""
        for st in /proc/"$pid"/task/*/status; do
            local s t
            s=$(awk '$1 == "State:" { print $2 }' "$st" 2>/dev/null)
            t=$(awk '$1 == "TracerPid:" { print $2 }' "$st" 2>/dev/null)
            [ -z "$s" ] && continue  # the thread exited meanwhile
            if [ "$s" = t ] || [ "$s" = T ] || [ "$t" != 0 ]; then bad="$st: State $s TracerPid $t"; fi
        done
        [ -z "$bad" ] && return 0
        sleep 0.02
    done
    fail "pid $pid not free after weftprof: $bad"
}

alive() { kill -0 "$1" 2>/dev/null || fail "target $1 died"; }

# share FILE FUNC COLUMN: the %leaf (2) or %onstack (3) of FUNC, 0 if absent.
share() {
    awk -v f="$2" -v c="$3" 'NR > 2 && $3 == f { v = (c == 2 ? $1 : $2); sub("%", "", v); print v; found = 1; exit }
                             END { if (!found) print 0 }' "$1"
}
atleast() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 >= b + 0) }'; }

# the share of the first of several names present in the histogram
anyshare() {
    local file=$1 col=$2 best=0; shift 2
    for f in "$@"; do
        local v; v=$(share "$file" "$f" "$col")
        atleast "$v" "$best" && best=$v
    done
    echo "$best"
}

# profile NAME ARGS...: runs weftprof ARGS, stdout to NAME.out, stderr to
# NAME.err; sets $rc.
profile() {
    local name=$1; shift
    "$wp" "$@" > "$tmp/$name.out" 2> "$tmp/$name.err"
    rc=$?
}

# lastbeat: the newest "beat N sigs=M" line of the churn target
beat() { grep '^beat' "$tmp/churn.out" | tail -n 1 | awk '{ print $2 }'; }
sigs() { grep '^beat' "$tmp/churn.out" | tail -n 1 | sed 's/.*sigs=//'; }

progresses() {
    local b0; b0=$(beat)
    for _ in $(seq 200); do
        sleep 0.02
        [ "$(beat)" != "$b0" ] && return 0
    done
    fail "the churn target made no progress after weftprof detached (beat $b0)"
}

usage_error() {  # usage_error WHAT ARGS...: exit 2, one stderr line naming WHAT
    local what=$1; shift
    profile usage "$@"
    [ "$rc" = 2 ] || fail "weftprof $*: exit $rc, want 2"
    [ "$(wc -l < "$tmp/usage.err")" = 1 ] || fail "weftprof $*: want one line, got: $(cat "$tmp/usage.err")"
    grep -qF -- "$what" "$tmp/usage.err" || fail "weftprof $*: message does not name '$what': $(cat "$tmp/usage.err")"
}

case $case in
errors)
    usage_error "'0'" -p 1 -hz 0
    usage_error "'10001'" -p 1 -hz 10001
    usage_error "'fast'" -p 1 -hz fast
    usage_error "'0'" -p 1 -d 0
    usage_error "'-1'" -p 1 -d -1
    usage_error "'soon'" -p 1 -d soon
    usage_error "'0'" -p 1 --top 0
    usage_error "'many'" -p 1 --top many
    usage_error "'x1'" -p x1
    usage_error "-hz" -p 1 -hz
    usage_error "'--bogus'" --bogus
    usage_error "not both" -p 1 -- true
    profile usage
    [ "$rc" = 2 ] || fail "weftprof with no target: exit $rc, want 2"

    # no such process: a pid that just exited and was reaped
    true & gone=$!; wait "$gone"
    usage_error "no such process: $gone" -p "$gone" -d 1

    # already traced: a first weftprof holds the target, a second is refused
    start burn "$bin/weftprof_target_burn2"
    target=$tpid
    "$wp" -p "$target" -d 30 > "$tmp/first.out" 2> "$tmp/first.err" &
    first=$!; kids+=("$first")
    for _ in $(seq 500); do [ "$(field "$target" TracerPid)" = "$first" ] && break; sleep 0.01; done
    [ "$(field "$target" TracerPid)" = "$first" ] || fail "the first weftprof never attached"
    usage_error "already traced by pid $first" -p "$target" -d 1
    kill -INT "$first"
    wait "$first"; [ $? = 0 ] || fail "first weftprof: exit $?, want 0 after SIGINT"
    untraced "$target"; alive "$target"
    grep -q burn_alpha "$tmp/first.out" || fail "the SIGINTed weftprof printed no histogram"

    # permission denied: an unprivileged weftprof against root's target
    if [ "$(id -u)" = 0 ] && command -v setpriv > /dev/null &&
       setpriv --reuid=65534 --regid=65534 --clear-groups "$wp" --help > /dev/null 2>&1; then
        setpriv --reuid=65534 --regid=65534 --clear-groups "$wp" -p "$target" -d 1 \
            > "$tmp/perm.out" 2> "$tmp/perm.err"
        rc=$?
        [ "$rc" = 2 ] || fail "unprivileged weftprof: exit $rc, want 2"
        grep -q "permission denied attaching to pid $target" "$tmp/perm.err" || fail "no permission message: $(cat "$tmp/perm.err")"
        grep -q "CAP_SYS_PTRACE" "$tmp/perm.err" || fail "permission message does not explain: $(cat "$tmp/perm.err")"
    elif [ "$(id -u)" != 0 ]; then
        profile perm "$wp" -p 1 -d 1
        [ "$rc" = 2 ] || fail "weftprof -p 1 as uid $(id -u): exit $rc, want 2"
        grep -q "permission denied" "$tmp/perm.err" || fail "no permission message: $(cat "$tmp/perm.err")"
    else
        echo "note: permission case skipped (no setpriv, or weftprof not runnable as nobody)"
    fi
    untraced "$target"; alive "$target"
    ;;

burn)
    start burn "$bin/weftprof_target_burn2"
    profile prof -p "$tpid" -d 1 -hz 200
    [ "$rc" = 0 ] || fail "weftprof exit $rc"
    head -n 1 "$tmp/prof.out" | grep -Eq "^weftprof: pid $tpid \(.*\): [0-9]+ samples, [0-9.]+ threads/sample" ||
        fail "bad header: $(head -n 1 "$tmp/prof.out")"
    per=$(head -n 1 "$tmp/prof.out" | sed 's/.* \([0-9.]*\) threads\/sample.*/\1/')
    atleast "$per" 2.5 || fail "want ~3 threads per sample, got $per"
    a=$(share "$tmp/prof.out" burn_alpha 2); b=$(share "$tmp/prof.out" burn_beta 2)
    atleast "$a" 20 || fail "burn_alpha leaf share $a%, want >= 20%"
    atleast "$b" 20 || fail "burn_beta leaf share $b%, want >= 20%"
    j=$(anyshare "$tmp/prof.out" 3 pthread_join __pthread_clockjoin_ex __pthread_join main)
    atleast "$j" 20 || fail "the joining main thread is missing (pthread_join/main on-stack $j%)"
    untraced "$tpid"; alive "$tpid"
    ;;

blocked)
    mkfifo "$tmp/blocked.in"
    start blocked "$bin/weftprof_target_blocked"
    for _ in $(seq 200); do [ "$(field "$tpid" State)" = S ] && break; sleep 0.01; done
    profile prof -p "$tpid" -d 0.5
    [ "$rc" = 0 ] || fail "weftprof exit $rc"
    r=$(anyshare "$tmp/prof.out" 3 read __read __libc_read __GI___libc_read __read_nocancel)
    atleast "$r" 50 || fail "read(2) not on the stack (on-stack $r%)"
    c=$(share "$tmp/prof.out" block_in_read 3)
    atleast "$c" 50 || fail "block_in_read not on the stack (on-stack $c%)"
    untraced "$tpid"
    [ "$(field "$tpid" State)" = S ] || fail "the target should still sleep in read"
    # The read survived the stops: a byte now completes it.
    echo x > "$tmp/blocked.in"
    for _ in $(seq 200); do kill -0 "$tpid" 2>/dev/null || break; sleep 0.01; done
    wait "$tpid"; st=$?
    [ "$st" = 0 ] || fail "target exit $st after its read; want 0"
    grep -q "read returned 1" "$tmp/blocked.out" || fail "the read did not return the byte"
    ;;

weft)
    start weft "$bin/weftprof_target_weft"
    profile prof -p "$tpid" -d 1 --top 100
    [ "$rc" = 0 ] || fail "weftprof exit $rc"
    per=$(head -n 1 "$tmp/prof.out" | sed 's/.* \([0-9.]*\) threads\/sample.*/\1/')
    atleast "$per" 2 || fail "want several Ms (threads) per sample, got $per"
    s=$(share "$tmp/prof.out" weft_spin 3)
    atleast "$s" 10 || fail "the burning goroutine (weft_spin) is missing: $s%"
    # The scheduler's own frames, under whichever names this runtime has.
    sched=$(anyshare "$tmp/prof.out" 3 weft__schedule schedule_loop findrunnable weft__notesleep \
            weft__notetsleep weft__futexwait stopm stopm_until weft__mstart mthread)
    atleast "$sched" 10 || fail "no scheduler frames (weft__schedule, findrunnable, weft__futexwait ...) on any M"
    untraced "$tpid"; alive "$tpid"
    ;;

goroutines)
    # Each sample of a weft program names the goroutine its thread ran,
    # read from the target's debug descriptor: in the pprof file's
    # "goroutine" label and in --by-goroutine.  Statically and dynamically
    # linked weft, and a program without weft.
    for kind in burners burners_shared; do
        start $kind "$bin/weftprof_target_$kind"
        a=$(awk '/^ready/ { print $2; exit }' "$tmp/$kind.out")
        b=$(awk '/^ready/ { print $3; exit }' "$tmp/$kind.out")
        profile $kind-prof -p "$tpid" -d 1 --by-goroutine -o "$tmp/$kind.pb.gz"
        [ "$rc" = 0 ] || fail "weftprof --by-goroutine: exit $rc"
        for g in "$a burner-a burn_a" "$b burner-b burn_b"; do
            set -- $g
            row=$(grep -E "^ +[0-9.]+%  +$1  $2 +$3 \\(" "$tmp/$kind-prof.out")
            [ -n "$row" ] || fail "$kind: no --by-goroutine row for goroutine $1 ($2 in $3)"
            atleast "$(echo "$row" | awk '{ sub("%", "", $1); print $1 }')" 10 ||
                fail "$kind: goroutine $1 has under 10% of the stacks: $row"
        done
        grep -q "goroutines seen" "$tmp/$kind-prof.err" || fail "$kind: the summary counts no goroutines"
        if command -v go > /dev/null; then
            HOME=$tmp GOCACHE=$tmp/gocache PPROF_TMPDIR=$tmp go tool pprof -tags "$tmp/$kind.pb.gz" \
                > "$tmp/$kind.tags" 2> "$tmp/tags.err" || fail "go tool pprof -tags failed: $(cat "$tmp/tags.err")"
            for g in "$a" "$b"; do
                awk '/^ *goroutine:/ { on = 1; next } /^ *[a-z]+:/ { on = 0 } on' "$tmp/$kind.tags" |
                    grep -qE ": $g\$" || fail "$kind: goroutine $g is not a goroutine label in the pprof file"
            done
        fi
        untraced "$tpid"; alive "$tpid"
        kill -KILL "$tpid"
    done
    start burn "$bin/weftprof_target_burn2"
    profile plain -p "$tpid" -d 0.3 --by-goroutine
    [ "$rc" = 0 ] || fail "weftprof --by-goroutine on a program without weft: exit $rc"
    grep -q "runs no weft runtime" "$tmp/plain.out" || fail "no note that the target has no weft runtime"
    ;;

churn)
    start churn "$bin/weftprof_target_churn"
    profile prof -p "$tpid" -d 2 -hz 1000
    [ "$rc" = 0 ] || fail "weftprof exit $rc"
    seen=$(sed -n 's/.*threads: \([0-9]*\) seen, \([0-9]*\) exited.*/\1/p' "$tmp/prof.err")
    exited=$(sed -n 's/.*threads: \([0-9]*\) seen, \([0-9]*\) exited.*/\2/p' "$tmp/prof.err")
    [ -n "$seen" ] && [ "$seen" -gt 4 ] || fail "threads created while sampling were not followed (seen '$seen')"
    [ -n "$exited" ] && [ "$exited" -gt 0 ] || fail "no thread exit noticed (exited '$exited')"
    grep -q churn_work "$tmp/prof.out" || fail "the short-lived threads' churn_work never sampled"
    untraced "$tpid"; alive "$tpid"
    progresses
    ;;

signals)
    # Real-time signals queue, so each one sent must arrive exactly once:
    # weftprof must pass on every signal-delivery-stop, never swallow one.
    start churn "$bin/weftprof_target_churn"
    "$wp" -p "$tpid" -hz 500 > "$tmp/prof.out" 2> "$tmp/prof.err" &
    prof=$!; kids+=("$prof")
    for _ in $(seq 500); do [ "$(field "$tpid" TracerPid)" = "$prof" ] && break; sleep 0.01; done
    [ "$(field "$tpid" TracerPid)" = "$prof" ] || fail "weftprof never attached"
    for _ in $(seq 50); do kill -s RTMIN "$tpid"; sleep 0.005; done
    sleep 0.2
    kill -TERM "$prof"   # SIGTERM: finish the sample, detach, report
    wait "$prof"; rc=$?
    [ "$rc" = 0 ] || fail "weftprof exit $rc after SIGTERM, want 0"
    grep -q "samples," "$tmp/prof.out" || fail "no report after SIGTERM"
    untraced "$tpid"; alive "$tpid"
    for _ in $(seq 200); do [ "$(sigs)" = 50 ] && break; sleep 0.02; done
    [ "$(sigs)" = 50 ] || fail "the target got $(sigs) of 50 signals"
    fwd=$(sed -n 's/.* \([0-9]*\) signals passed on.*/\1/p' "$tmp/prof.err")
    [ -n "$fwd" ] && [ "$fwd" -gt 0 ] || fail "no signal went through weftprof ('$fwd'): test proves nothing"
    progresses
    ;;

exit)
    # The target exits while profiled: a report, exit 0, and a note.
    start burn "$bin/weftprof_target_burn2" 0.5
    profile prof -p "$tpid" -d 10
    [ "$rc" = 0 ] || fail "weftprof exit $rc when the target exited"
    grep -q "pid $tpid exited after" "$tmp/prof.err" || fail "no note that the target exited"
    grep -q burn_alpha "$tmp/prof.out" || fail "no samples before the exit"
    # A zombie leader (main called pthread_exit) cannot be traced and never
    # stops; its other threads are profiled all the same.
    start churn "$bin/weftprof_target_churn" zombie
    for _ in $(seq 200); do [ "$(field "$tpid" State)" = Z ] && break; sleep 0.01; done
    [ "$(field "$tpid" State)" = Z ] || fail "the leader did not become a zombie"
    profile prof2 -p "$tpid" -d 1
    [ "$rc" = 0 ] || fail "weftprof exit $rc on a zombie leader"
    # churn_work is a leaf in about 5% of the samples (thread creation is
    # most of the rest), too few to count on in a busy second; churn, the
    # loop's own thread, is on a fifth of the stacks.
    grep -Eq ' (churn|churn_work)$' "$tmp/prof2.out" ||
        fail "the live threads behind a zombie leader were not sampled: $(head -5 "$tmp/prof2.out")"
    grep -q "late" "$tmp/prof2.err" && fail "waited on the zombie leader: $(cat "$tmp/prof2.err")"
    untraced "$tpid"; progresses
    ;;

groupstop)
    # A target stopped with SIGSTOP stays stopped across a profile, and one
    # stopped and continued while profiled runs on afterwards.
    start burn "$bin/weftprof_target_burn2"
    kill -STOP "$tpid"
    for _ in $(seq 200); do [ "$(field "$tpid" State)" = T ] && break; sleep 0.01; done
    [ "$(field "$tpid" State)" = T ] || fail "target did not stop"
    profile prof -p "$tpid" -d 0.3
    [ "$rc" = 0 ] || fail "weftprof exit $rc on a stopped target"
    grep -q burn_alpha "$tmp/prof.out" || fail "the stopped target's stacks were not sampled"
    [ "$(field "$tpid" State)" = T ] || fail "the stopped target is not stopped after weftprof (State $(field "$tpid" State))"
    [ "$(field "$tpid" TracerPid)" = 0 ] || fail "still traced"
    kill -CONT "$tpid"
    untraced "$tpid"; alive "$tpid"

    "$wp" -p "$tpid" -d 1.5 > "$tmp/prof2.out" 2> "$tmp/prof2.err" &
    prof=$!; kids+=("$prof")
    for _ in $(seq 500); do [ "$(field "$tpid" TracerPid)" = "$prof" ] && break; sleep 0.01; done
    sleep 0.2
    kill -STOP "$tpid"
    sleep 0.3
    kill -CONT "$tpid"
    wait "$prof"; rc=$?
    [ "$rc" = 0 ] || fail "weftprof exit $rc"
    untraced "$tpid"; alive "$tpid"
    t0=$(awk '{ print $14 }' "/proc/$tpid/stat"); sleep 0.3; t1=$(awk '{ print $14 }' "/proc/$tpid/stat")
    [ "$t1" -gt "$t0" ] || fail "the target does not run after SIGSTOP/SIGCONT under weftprof (utime $t0 -> $t1)"
    ;;

pprof)
    start burn "$bin/weftprof_target_burn2"
    profile prof -p "$tpid" -d 1 -o "$tmp/cpu.pb.gz"
    [ "$rc" = 0 ] || fail "weftprof -o: exit $rc"
    [ -s "$tmp/cpu.pb.gz" ] || fail "no pprof file"
    [ "$(head -c 2 "$tmp/cpu.pb.gz" | od -An -tx1 | tr -d ' ')" = 1f8b ] || fail "not gzip"
    gzip -t "$tmp/cpu.pb.gz" || fail "corrupt gzip"
    untraced "$tpid"; alive "$tpid"
    if command -v go > /dev/null; then
        HOME=$tmp GOCACHE=$tmp/gocache PPROF_TMPDIR=$tmp go tool pprof -top "$tmp/cpu.pb.gz" \
            > "$tmp/top.out" 2> "$tmp/top.err" || fail "go tool pprof failed: $(cat "$tmp/top.err")"
        grep -q burn_alpha "$tmp/top.out" || fail "burn_alpha not in go tool pprof -top"
        grep -q burn_beta "$tmp/top.out" || fail "burn_beta not in go tool pprof -top"
        # The file's total is the time sampled x 3 threads even at a rate
        # weftprof cannot keep up with (10000 Hz: a few thousand samples/s
        # at best): each sample stands for the ticks that came due since
        # the one before.  Counting one tick per sample, it said 20-150%.
        profile fast -p "$tpid" -d 1 -hz 10000 -o "$tmp/fast.pb.gz"
        [ "$rc" = 0 ] || fail "weftprof -hz 10000 -o: exit $rc"
        HOME=$tmp GOCACHE=$tmp/gocache PPROF_TMPDIR=$tmp go tool pprof -top "$tmp/fast.pb.gz" \
            > "$tmp/fast.top" 2> "$tmp/top.err" || fail "go tool pprof failed: $(cat "$tmp/top.err")"
        pct=$(sed -n 's/.*Total samples = .* (\([0-9.]*\)%).*/\1/p' "$tmp/fast.top")
        [ -n "$pct" ] || fail "no total in go tool pprof -top: $(head -n 5 "$tmp/fast.top")"
        atleast "$pct" 225 && ! atleast "$pct" 375.01 ||
            fail "at 10000 Hz the profile holds ${pct}% of the time sampled, want ~300% (3 threads): $(grep -m1 ticks "$tmp/fast.err")"
    else
        echo "note: go not installed: pprof decoding not checked"
    fi
    usage_error "/nonexistent/dir/x.pb.gz" -p "$tpid" -o /nonexistent/dir/x.pb.gz
    untraced "$tpid"
    ;;

output)
    # -o never destroys a file: nothing is created, truncated or unlinked
    # before the profile is complete; a regular file is replaced by rename
    # from a temporary file beside it; anything else is written in place.
    gz() { [ "$(head -c 2 "$1" | od -An -tx1 | tr -d ' ')" = 1f8b ] && gzip -t "$1" 2> /dev/null; }
    true & gone=$!; wait "$gone"
    echo precious > "$tmp/keep.pb.gz"; chmod 600 "$tmp/keep.pb.gz"
    echo linked > "$tmp/real.pb.gz"; ln -s real.pb.gz "$tmp/link.pb.gz"
    mkfifo "$tmp/fifo"
    dev=""
    if [ "$(id -u)" = 0 ] && mknod "$tmp/null" c 1 3 2> /dev/null; then dev=$tmp/null; fi  # a /dev/null of our own
    # A failed attach leaves every kind of target as it was (the FIFO
    # without a reader would block an open: timeout catches that).
    for f in keep.pb.gz link.pb.gz fifo ${dev:+null}; do
        timeout 10 "$wp" -p "$gone" -o "$tmp/$f" > "$tmp/bad.out" 2> "$tmp/bad.err"; rc=$?
        [ "$rc" = 2 ] || fail "weftprof -p <gone> -o $f: exit $rc, want 2 (124: it opened the FIFO)"
        grep -q "no such process" "$tmp/bad.err" || fail "no error for the gone pid: $(cat "$tmp/bad.err")"
    done
    [ "$(cat "$tmp/keep.pb.gz" 2> /dev/null)" = precious ] || fail "a failed attach destroyed an existing -o file"
    [ -L "$tmp/link.pb.gz" ] || fail "a failed attach removed the symbolic link given to -o"
    [ "$(cat "$tmp/real.pb.gz")" = linked ] || fail "a failed attach truncated the file behind a symbolic link"
    [ -p "$tmp/fifo" ] || fail "a failed attach removed the FIFO given to -o"
    [ -z "$dev" ] || [ -c "$dev" ] || fail "a failed attach removed the device given to -o"
    profile bad -o "$tmp/keep.pb.gz" -- /nonexistent/command
    [ "$rc" = 127 ] || fail "weftprof -o -- /nonexistent: exit $rc, want 127"
    [ "$(cat "$tmp/keep.pb.gz" 2> /dev/null)" = precious ] || fail "a command that never ran destroyed the -o file"
    [ -z "$(ls -A "$tmp" | grep '^\.')" ] || fail "temporary files left behind: $(ls -A "$tmp")"

    # Successful runs: a regular file is replaced (keeping its mode), the
    # file behind a symbolic link is replaced and the link stays, a FIFO
    # and a device are written in place, "-" is stdout.
    start burn "$bin/weftprof_target_burn2"
    profile ok -p "$tpid" -d 0.3 -o "$tmp/keep.pb.gz"
    [ "$rc" = 0 ] || fail "weftprof -o FILE: exit $rc"
    gz "$tmp/keep.pb.gz" || fail "the existing -o file was not replaced by a profile"
    [ "$(stat -c %a "$tmp/keep.pb.gz")" = 600 ] || fail "the replaced file lost its mode: $(stat -c %a "$tmp/keep.pb.gz")"
    profile ok -p "$tpid" -d 0.3 -o "$tmp/new.pb.gz"
    [ "$rc" = 0 ] && gz "$tmp/new.pb.gz" || fail "weftprof -o NEWFILE: exit $rc or no profile"
    profile ok -p "$tpid" -d 0.3 -o "$tmp/link.pb.gz"
    [ "$rc" = 0 ] || fail "weftprof -o LINK: exit $rc"
    [ -L "$tmp/link.pb.gz" ] || fail "-o replaced the symbolic link itself"
    gz "$tmp/real.pb.gz" || fail "the file behind the symbolic link holds no profile"
    cat "$tmp/fifo" > "$tmp/fromfifo" & reader=$!; kids+=("$reader")
    timeout 20 "$wp" -p "$tpid" -d 0.3 -o "$tmp/fifo" > "$tmp/ok.out" 2> "$tmp/ok.err"; rc=$?
    wait "$reader"
    [ "$rc" = 0 ] || fail "weftprof -o FIFO: exit $rc"
    [ -p "$tmp/fifo" ] || fail "-o replaced the FIFO"
    gz "$tmp/fromfifo" || fail "the FIFO's reader got no profile"
    if [ -n "$dev" ]; then
        profile ok -p "$tpid" -d 0.3 -o "$dev"
        [ "$rc" = 0 ] || fail "weftprof -o DEVICE: exit $rc"
        [ -c "$dev" ] || fail "-o replaced the device"
    else
        echo "note: not root: the device case is left out"
    fi
    "$wp" -p "$tpid" -d 0.3 -o - > "$tmp/stdout.pb.gz" 2> "$tmp/stdout.err"; rc=$?
    [ "$rc" = 0 ] || fail "weftprof -o -: exit $rc"
    gz "$tmp/stdout.pb.gz" || fail "-o - wrote no profile to stdout"
    grep -q burn_alpha "$tmp/stdout.err" || fail "-o -: the histogram is not on stderr"
    [ -e "$tmp/-" ] && fail "-o - created a file named '-'"
    [ -z "$(ls -A "$tmp" | grep '^\.')" ] || fail "temporary files left behind: $(ls -A "$tmp")"
    usage_error "Is a directory" -p "$tpid" -o "$tmp"
    ln -s missing "$tmp/dangling"
    usage_error "dangling" -p "$tpid" -o "$tmp/dangling"
    [ -L "$tmp/dangling" ] && [ ! -e "$tmp/missing" ] || fail "-o through a dangling link changed something"
    untraced "$tpid"; alive "$tpid"
    ;;

cmd)
    # -- CMD: profiled from its exec to its exit; its exit status is passed on.
    profile prof -- "$bin/weftprof_target_burn2" 0.6
    [ "$rc" = 7 ] || fail "weftprof -- CMD: exit $rc, want the command's 7"
    a=$(share "$tmp/prof.out" burn_alpha 2)
    atleast "$a" 20 || fail "burn_alpha leaf share $a% in the command's profile"
    grep -q "tracer_spawn" "$tmp/prof.out" && fail "sampled weftprof's own child before its exec"
    # -d shorter than the command: the report comes at -d, the command runs on
    # (for seconds after it, so that a loaded machine still finds it running).
    "$wp" -d 0.3 -- "$bin/weftprof_target_burn2" 4 > "$tmp/prof2.out" 2> "$tmp/prof2.err" &
    prof=$!; kids+=("$prof")
    for _ in $(seq 300); do grep -q samples "$tmp/prof2.out" && break; sleep 0.01; done
    grep -q samples "$tmp/prof2.out" || fail "no report at -d"
    child=$(pgrep -P "$prof" | head -n 1)
    [ -n "$child" ] || fail "the command is not running after -d"
    untraced "$child"
    wait "$prof"; rc=$?
    [ "$rc" = 7 ] || fail "weftprof -d -- CMD: exit $rc, want 7"
    profile bad -- /nonexistent/command
    [ "$rc" = 127 ] || fail "weftprof -- /nonexistent: exit $rc, want 127"
    grep -q "cannot run /nonexistent/command" "$tmp/bad.err" || fail "no message for a missing command"
    ;;

*)
    fail "unknown case $case"
    ;;
esac
echo "ok [$case]"
