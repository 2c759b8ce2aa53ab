#!/bin/bash
# run.sh CASE TARGET [LIBDIR] — one test of gdb's weft extension (registered
# with ctest as gdb_CASE).  TARGET is target_goroutines.c built against
# libweft (100 goroutines parked in known places, one running).  gdb runs
# in batch mode with no ~/.gdbinit; the extension must auto-load from the
# .debug_gdb_scripts section of TARGET (static link) or of libweft.so in
# LIBDIR (shared link), allowed by add-auto-load-safe-path.
#
#   live        gdb attached to the running target
#   gcore       a core written by gdb's gcore (the guard pages lifted for
#               it and back in place afterwards), read by a second gdb
#   kernelcore  the kernel's core dump of the target killed by SIGABRT
#               (skipped, exit 77, if core_pattern pipes cores elsewhere)
#   shared      a stripped target on libweft.so, attached
#   live_compact, gcore_compact, kernelcore_compact
#               the same with SCHEDDEBUG=compactstacks=1: the parked
#               goroutines' stacks are compacted (runtime/stack.c); the
#               live and gcore cases check first that most of them are
#               (gcore brings them back before it copies them; a kernel
#               core holds whatever the crash left)
#
# Each case checks that 'info goroutines' lists all 101 goroutines with
# their wait reasons and the program's own function they wait in, and
# that 'goroutine N bt' shows a goroutine's call chain down to
# weft__gentry.  Every process started here is killed on exit.
set -u
case=$1 target=$2 libdir=${3:-}
compact=
if [[ $case == *_compact ]]; then
    compact=1
    case=${case%_compact}
    export SCHEDDEBUG=compactstacks=1
fi
. "$(dirname "${BASH_SOURCE[0]}")/../../../tests/harness.sh" weft-gdb-test

# start: runs the target in $tmp, waits for its "ready"; sets $tpid.
start() {
    ( cd "$tmp" && ulimit -c unlimited && exec "$target" ) > "$tmp/target.out" 2>&1 &
    tpid=$!
    kids+=("$tpid")
    for _ in $(seq 1000); do
        grep -q '^ready' "$tmp/target.out" 2>/dev/null && return 0
        kill -0 "$tpid" 2>/dev/null || fail "the target died before it was ready"
        sleep 0.01
    done
    fail "the target never got ready"
}

# gdbrun NAME ARGS...: gdb in batch mode, output to NAME.out.
gdbrun() {
    local name=$1; shift
    local safe=$(dirname "$target")
    [ -n "$libdir" ] && safe=$libdir
    timeout 300 gdb -nx -batch -iex "add-auto-load-safe-path $safe" "$@" > "$tmp/$name.out" 2>&1
}

# goroutines FILE: the 'info goroutines' lines of a gdb transcript.
goroutines() { grep -E '^[* ] +[0-9]+  ' "$1"; }

# count FILE PATTERN: info goroutines lines matching an extended regex.
count() { goroutines "$1" | grep -cE "$2"; }

# at FUNC: how a place in FUNC reads in the list (the stripped target of
# the shared case has no names of its own: any place).
at() { [ "$case" = shared ] && echo '.*' || echo "$1 at .*"; }

# check_list FILE: the 101 goroutines, with wait reasons and places.
check_list() {
    local f=$1 n
    n=$(goroutines "$f" | wc -l)
    [ "$n" = 101 ] || fail "info goroutines lists $n goroutines, want 101"
    n=$(count "$f" "waiting \\(chan receive\\) +$(at leaf3)\"chain-a\"\$"); [ "$n" = 40 ] || fail "$n of 40 chain-a goroutines in leaf3, chan receive"
    n=$(count "$f" "waiting \\(sleep\\) +$(at nap_inner)\"chain-b\"\$"); [ "$n" = 30 ] || fail "$n of 30 chain-b goroutines in nap_inner, sleep"
    n=$(count "$f" "waiting \\(chan send\\) +$(at push_one)\"chain-c\"\$"); [ "$n" = 20 ] || fail "$n of 20 chain-c goroutines in push_one, chan send"
    n=$(count "$f" "waiting \\(sync.Mutex.Lock\\) +$(at take_lock)\"locker\"\$"); [ "$n" = 8 ] || fail "$n of 8 lockers in take_lock, sync.Mutex.Lock"
    n=$(count "$f" "waiting \\(sync.WaitGroup.Wait\\) +$(at waiter)\"waiter\"\$"); [ "$n" = 1 ] || fail "the WaitGroup waiter is missing"
    n=$(count "$f" "^ +1  waiting \\(chan receive\\) +$(at main_wait)\"main\"\$"); [ "$n" = 1 ] || fail "goroutine 1 is not waiting in main_wait"
    n=$(count "$f" "^\\* +[0-9]+  running +$(at spin_leaf) \\(LWP [0-9]+\\) \"spinner\"\$"); [ "$n" = 1 ] || fail "the running spinner has no * line on its thread"
    n=$(goroutines "$f" | grep -c '^\*'); [ "$n" = 1 ] || fail "$n goroutines marked running, want 1"
}

# goid FILE PATTERN: the first goroutine id whose line matches.
goid() { goroutines "$1" | grep -E "$2" | head -n 1 | awk '{ print ($1 == "*" ? $2 : $1) }'; }

# chain FILE FUNC...: one backtrace holds the frames FUNC... in order
# (innermost first), the last of them the backtrace's last frame.  Only
# the lines after the goroutine's header count: gdb prints the current
# frame of a core it opens as a "#0" line too.
chain() {
    local f=$1; shift
    local frames; frames=$(sed -n '/^goroutine [0-9]/,$p' "$f" | grep -E '^#[0-9]+ ' |
                           sed -E 's/^#[0-9]+ +(0x[0-9a-f]+ in )?([^ ]+) .*/\2/')
    local want="$*" got
    got=$(echo "$frames" | grep -xE "$(echo "$want" | tr ' ' '|')" | tr '\n' ' ' | sed 's/ $//')
    [ "$got" = "$want" ] || fail "backtrace frames '$got', want '$want'"
    [ "$(echo "$frames" | tail -n 1)" = "${!#}" ] || fail "the backtrace does not end at ${!#}"
}

# bts FILE: backtraces of a chain-a, a chain-b and the running goroutine,
# from a first gdb run's list, checked.
bts() {
    local list=$1; shift
    local a b s
    a=$(goid "$list" '"chain-a"$'); b=$(goid "$list" '"chain-b"$'); s=$(goid "$list" '"spinner"$')
    gdbrun bt_a "$@" -ex "goroutine $a bt"
    grep -q "^goroutine $a \"chain-a\" \[waiting (chan receive)\]:" "$tmp/bt_a.out" || fail "no header for goroutine $a"
    chain "$tmp/bt_a.out" weft_chan_recv leaf3 mid2 top1 chain_a weft__gentry
    grep -q "^created by spawn at .* in goroutine 1$" "$tmp/bt_a.out" || fail "no 'created by spawn' line"
    gdbrun bt_b "$@" -ex "goroutine $b bt"
    chain "$tmp/bt_b.out" weft_sleep nap_inner nap_outer chain_b weft__gentry
    gdbrun bt_s "$@" -ex "goroutine $s bt"
    grep -q "^on thread [0-9]* (LWP [0-9]*):" "$tmp/bt_s.out" || fail "the running goroutine is not shown on its thread"
    chain "$tmp/bt_s.out" spin_leaf spinner weft__gentry
    gdbrun bt_all "$@" -ex "goroutine all bt"
    local n; n=$(grep -c '^goroutine [0-9]* .*\]:$' "$tmp/bt_all.out")
    [ "$n" = 101 ] || fail "goroutine all bt shows $n goroutines, want 101"
    n=$(grep -cE '^#[0-9]+ +(0x[0-9a-f]+ in )?weft__gentry ' "$tmp/bt_all.out")
    [ "$n" = 101 ] || fail "$n of 101 backtraces reach weft__gentry"
}

# compacted NAME ARGS...: how many switched-out goroutines have their frames
# in a copy (a compacted stack), as the descriptor says (gdb's output in
# NAME.out).
compacted() {
    local name=$1; shift
    cat > "$tmp/compacted.py" <<'EOF'
d = descriptor()
n = 0
for g in d.goroutines():
    c = g.compacted() if g.shown() and g.switched_out() else None
    if c is not None and c[1]:
        n += 1
print("weft-test: %d compacted" % n)
EOF
    gdbrun "$name" "$@" -x "$tmp/compacted.py"
    sed -n 's/^weft-test: \([0-9]*\) compacted$/\1/p' "$tmp/$name.out"
}

# many_compacted ARGS...: fails unless 50 or more goroutines are compacted.
many_compacted() {
    local n; n=$(compacted ncompact "$@")
    [ "${n:-0}" -ge 50 ] || fail "only ${n:-no} goroutines have compacted stacks, want 50 or more"
    echo "$n goroutines compacted"
}

command -v gdb > /dev/null || fail "gdb is not installed (Debian: gdb)"

case $case in
live|shared)
    start
    [ -n "$compact" ] && many_compacted -p "$tpid"
    gdbrun list -p "$tpid" -ex "info goroutines"
    gdbrun autoload -p "$tpid" -ex "info auto-load python-scripts"
    grep -q "^Yes *weft-gdb.py" "$tmp/autoload.out" || fail "weft-gdb.py was not auto-loaded"
    check_list "$tmp/list.out"
    if [ "$case" = live ]; then
        bts "$tmp/list.out" -p "$tpid"
    else
        # A stripped program has no names of its own: the list and the
        # runtime's frames still come from libweft.so.
        a=$(goid "$tmp/list.out" '"chain-a"$')
        gdbrun bt_a -p "$tpid" -ex "goroutine $a bt"
        chain "$tmp/bt_a.out" weft_chan_recv weft__gentry
    fi
    kill -0 "$tpid" || fail "the target did not survive gdb"
    ;;
gcore)
    start
    [ -n "$compact" ] && many_compacted -p "$tpid"
    cat > "$tmp/guard.py" <<'EOF'
d = descriptor()
g = next(g for g in d.goroutines() if g.shown() and g.switched_out())
try:
    d.inferior.read_memory(g.stacklo - 4096, 1)
    print("weft-test: guard page readable")
except gdb.MemoryError:
    print("weft-test: guard page in place")
EOF
    gdbrun gcore -p "$tpid" -x "$tmp/guard.py" -ex "gcore $tmp/gcore.core" -x "$tmp/guard.py"
    grep -q "^weft: guard pages of [0-9]* goroutine stacks lifted for gcore" "$tmp/gcore.out" ||
        fail "gcore did not lift the guard pages"
    grep -q "Memory read failed" "$tmp/gcore.out" && grep "Memory read failed" "$tmp/gcore.out" | grep -vq "0xffffffffff600000" &&
        fail "gcore could not read a mapping: $(grep 'Memory read failed' "$tmp/gcore.out" | head -n 3)"
    [ "$(grep -c '^weft-test: guard page in place' "$tmp/gcore.out")" = 2 ] ||
        fail "the guard pages were not in place before and after gcore"
    [ -s "$tmp/gcore.core" ] || fail "no core written"
    kill -0 "$tpid" || fail "the target did not survive gcore"
    gdbrun list "$target" "$tmp/gcore.core" -ex "info goroutines"
    check_list "$tmp/list.out"
    bts "$tmp/list.out" "$target" "$tmp/gcore.core"
    ;;
kernelcore)
    pattern=$(cat /proc/sys/kernel/core_pattern)
    case $pattern in
    "|"*) echo "SKIP [$case]: kernel.core_pattern pipes cores to a program ($pattern)"; exit 77 ;;
    /*)   echo "SKIP [$case]: kernel.core_pattern writes cores elsewhere ($pattern)"; exit 77 ;;
    esac
    start
    kill -ABRT "$tpid"
    wait "$tpid" 2>/dev/null
    core=$(ls "$tmp"/core* 2>/dev/null | head -n 1)
    if [ -z "$core" ]; then
        echo "SKIP [$case]: no core file in the target's directory (core_pattern '$pattern', RLIMIT_CORE $(ulimit -Hc))"
        exit 77
    fi
    [ -n "$compact" ] && echo "$(compacted ncompact "$target" "$core") goroutines compacted in the core"
    gdbrun list "$target" "$core" -ex "info goroutines"
    check_list "$tmp/list.out"
    bts "$tmp/list.out" "$target" "$core"
    ;;
*)
    fail "unknown case $case"
    ;;
esac
echo "ok [$case]"
