#!/bin/sh
# run.sh -- model-check lock.pml (weft's mutex unlock protocol under x86-TSO).
#
# Needs `spin` and `gcc` on PATH; installs nothing.  Each check is an
# exhaustive safety search (spin -a; gcc -O2 -DSAFETY pan.c; ./pan) in a
# temporary directory.  Exits 0 only if every correct variant verifies with
# zero errors and a complete search, AND every broken variant yields the
# expected error (an invalid end state: a thread asleep for ever, i.e. a
# lost wake-up).
#
#   NTHR=2|3 (default 3) and ITERS=n (default 3) in the environment change
#   the bounds.  VERBOSE=1 replays the counterexample of each broken variant.
#
# Checks:
#   asym            asymmetric unlock + membarrier          must verify
#   sym             symmetric unlock (mfence), no membarrier must verify
#   asym-nofence    asymmetric unlock, heavyfence removed    must FAIL
#   asym-mbsplit    asym, membarrier as per-thread drains    must verify
#                   at independent moments (no atomicity abstraction)
#   asym-wakenomb   asym, futex_wake without the kernel's    must FAIL
#                   smp_mb() (B): shows the protocol relies on it
#   sym-wakenomb    sym, futex_wake without (B)              must verify
set -u

here=$(cd "$(dirname "$0")" && pwd)
model="$here/lock.pml"
NTHR=${NTHR:-3}
ITERS=${ITERS:-3}
VERBOSE=${VERBOSE:-0}

for tool in spin gcc; do
    command -v "$tool" >/dev/null 2>&1 || { echo "run.sh: $tool not found on PATH" >&2; exit 2; }
done
[ -f "$model" ] || { echo "run.sh: $model missing" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/weft-lockmodel.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
trap 'rm -rf "$tmp"; exit 130' HUP INT PIPE TERM

now() { date +%s.%N; }
status=0

# check NAME EXPECT(pass|fail) SPIN-DEFINES...
check() {
    name=$1; expect=$2; shift 2
    d="$tmp/$name"
    mkdir -p "$d" && cp "$model" "$d/lock.pml" || exit 2
    t0=$(now)
    if ! (cd "$d" && spin -DNTHR="$NTHR" -DITERS="$ITERS" "$@" -a lock.pml >spin.out 2>&1); then
        echo "FAIL  $name: spin -a failed:"; sed 's/^/      /' "$d/spin.out"; status=1; return
    fi
    if ! (cd "$d" && gcc -O2 -w -DSAFETY -o pan pan.c >gcc.out 2>&1); then
        echo "FAIL  $name: gcc failed:"; sed 's/^/      /' "$d/gcc.out"; status=1; return
    fi
    # -m: search-depth bound (the deepest path is ~550 steps at 3x3)
    (cd "$d" && ./pan -m200000 >pan.out 2>&1)
    t1=$(now)
    secs=$(echo "$t0 $t1" | awk '{ printf "%.2f", $2 - $1 }')
    out="$d/pan.out"
    errors=$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' "$out" | head -1)
    states=$(awk '/states, stored/ { print $1; exit }' "$out")
    trans=$(awk '/transitions \(= stored\+matched\)/ { print $1; exit }' "$out")
    first=$(grep -m1 '^pan:1:' "$out" | sed 's/^pan:1: //')
    incomplete=$(grep -c -e 'max search depth too small' -e 'Search not completed' "$out")
    : "${errors:=?}" "${states:=?}" "${trans:=?}"
    info="states=$states transitions=$trans time=${secs}s  [spin${*:+ $*} -DNTHR=$NTHR -DITERS=$ITERS]"
    if [ "$expect" = pass ]; then
        if [ "$errors" = 0 ] && [ "$incomplete" = 0 ]; then
            echo "ok    $name: verified, 0 errors, $info"
        else
            echo "FAIL  $name: expected to verify, got errors=$errors${first:+ ($first)}, incomplete-search=$incomplete, $info"
            status=1
        fi
    else
        case "$first" in
        *"invalid end state"*)
            echo "ok    $name: error found as expected ($first), $info"
            if [ "$VERBOSE" = 1 ]; then
                (cd "$d" && spin -DNTHR="$NTHR" -DITERS="$ITERS" "$@" -t -p -g lock.pml) \
                    | grep -E 'proc +[0-9]+ \((thread|drainer)' \
                    | grep -vE 'h = |h\+\+|\.(addr|val)\[|goto|\[(DO|IF|break|else|\(1\))\]|sub-sequence|v = 0\]|ok = 0\]|incs|assert' \
                    | sed 's/^/      /'
            fi ;;
        *)
            echo "FAIL  $name: expected a lost wake-up (invalid end state), got errors=$errors${first:+ ($first)}, $info"
            status=1 ;;
        esac
    fi
}

check asym          pass
check sym           pass -DSYM
check asym-nofence  fail -DNO_HEAVYFENCE
check asym-mbsplit  pass -DMB_SPLIT
check asym-wakenomb fail -DWAKE_NO_MB
check sym-wakenomb  pass -DSYM -DWAKE_NO_MB

if [ $status = 0 ]; then echo "all checks behaved as expected"; else echo "SOME CHECKS FAILED"; fi
exit $status
