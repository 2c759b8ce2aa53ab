# weft-gdb.py -- gdb support for weft's goroutines.
#
# libweft carries this script in its .debug_gdb_scripts section, so gdb
# runs it for every program linked with weft, once its auto-load safe-path
# allows the file (README.md, "Debugging a weft program"); it can also be
# sourced by hand (installed as share/weft/gdb/weft-gdb.py).
#
#   info goroutines               every goroutine: id, status (with the wait
#                                 reason), where it is; "*" marks those on a
#                                 thread
#   goroutine N bt [OPTIONS]      the backtrace of goroutine N (bt's options)
#   goroutine all bt [OPTIONS]    ... of every goroutine
#
# It works on a live process and on a core file, from gdb's gcore or the
# kernel.  Everything comes from weft's debug descriptor, weft_debug_info
# (runtime/diag/debuginfo.h, docs/formats.md): the addresses of the lists
# of goroutines (G) and threads (M), the offsets of the fields read, and
# the layout of the registers a switched-out goroutine saved.  The script
# never uses weft's struct types, so it needs no debug information for
# libweft and cannot drift from the runtime.
#
# How a parked goroutine's stack is shown.  Go's runtime-gdb.py sets $pc
# and $sp to the goroutine's and runs bt; a core file has no registers to
# set.  Here, as in folly's fibers script, an unwinder armed for one
# goroutine claims the innermost real frame of the selected thread and
# says its caller is the goroutine's saved context: gdb then unwinds from
# those registers through the goroutine's own stack with its ordinary
# (DWARF) unwinders, down to weft__gentry, which ends every goroutine
# stack.  The frames shown are those from the goroutine's on.  A goroutine
# running on a thread (or blocked in a system call) is shown as that
# thread's stack.
#
# gcore.  A goroutine stack slab has MADV_GUARD_INSTALL guard pages inside
# its one mapping, and gcore abandons a mapping at its first unreadable
# page: its core would hold zeros for every stack.  So gcore is hooked:
# before it, weft's weft__stack_guards(1) is called in the stopped process
# (through the descriptor; with scheduler-locking on, so no other thread
# runs) to lift the guards, and after it weft__stack_guards(0) puts them
# back (runtime/stack.c).  A kernel core dump needs none of this.
#
# Compacted stacks.  A goroutine spawned with weft_attr.compact (or every
# one, SCHEDDEBUG=compactstacks=1) gives its stack's pages back while it is
# parked and keeps its live frames in a heap copy (runtime/stack.c); its
# saved sp is then 0 and the stack's own addresses unreadable.  The
# descriptor (version 2) says where the saved sp and the copy are.  gdb's
# own unwinders read the stack in place, so for such a goroutine the
# unwinder below also steps every frame on the compacted stack by its frame
# pointer, reading the words in the copy: the call chain is whole, but
# gdb knows only the pc, sp and frame pointer of the frames past the
# first (arguments kept in other registers may show as <optimized out>
# or wrong).  gcore brings every compacted stack back before it copies
# them (weft__stack_guards), so its core needs none of this.

import re
import struct

import gdb
import gdb.unwinder

_MAGIC = b"weftdbg\0"
_VERSION = 2

# DWARF register numbers to gdb's names, and the pc, sp and frame pointer
# names, per ELF machine.  AArch64's d8-d15 are halves of gdb's vector
# registers and are left out: no frame's pc, sp or frame chain depends on
# them.
_ARCHS = {
    62: ("rip", "rsp", "rbp", {3: "rbx", 6: "rbp", 12: "r12", 13: "r13", 14: "r14", 15: "r15"}),
    183: ("pc", "sp", "x29", dict((n, "x%d" % n) for n in range(19, 31))),
}


class _Field(object):
    __slots__ = ("off", "size")

    def __init__(self, off, size):
        self.off = off
        self.size = size


class Descriptor(object):
    """weft_debug_info, read from the inferior's memory."""

    # (name, kind) in the order of struct weft_debug_info after its
    # 24-byte header; kind: q = u64, i = u32, f = weft_debug_field.
    _LAYOUT = (
        ("allg", "q"), ("allm", "q"), ("waitreasons", "q"), ("nwaitreasons", "i"),
        ("reserved0", "i"), ("srcdir", "q"), ("gentry", "q"), ("freshpc", "q"),
        ("guards", "q"),
        ("g_size", "i"), ("reserved1", "i"),
        ("g_goid", "f"), ("g_status", "f"), ("g_waitreason", "f"), ("g_sp", "f"),
        ("g_stacklo", "f"), ("g_stackhi", "f"), ("g_m", "f"), ("g_allglink", "f"),
        ("g_name", "f"), ("g_fn", "f"), ("g_gopc", "f"), ("g_parentgoid", "f"),
        ("g_syscallpc", "f"), ("g_syscallfp", "f"), ("g_issystem", "f"),
        ("m_size", "i"), ("reserved2", "i"),
        ("m_id", "f"), ("m_curg", "f"), ("m_tid", "f"), ("m_alllink", "f"), ("m_exited", "f"),
        ("g_status_idle", "i"), ("g_status_runnable", "i"), ("g_status_running", "i"),
        ("g_status_syscall", "i"), ("g_status_waiting", "i"), ("g_status_dead", "i"),
        ("frame_size", "i"), ("frame_pc", "i"), ("frame_fp", "i"), ("frame_nregs", "i"),
    )
    # Version 2, after frame_regs: compacted stacks.
    _LAYOUT2 = (
        ("g_stack", "f"), ("stack_savedsp", "f"), ("stack_copy", "f"), ("stack_cstate", "f"),
        ("stack_state_mask", "i"), ("stack_state_compacting", "i"),
        ("stack_state_compacted", "i"), ("stack_state_restoring", "i"),
    )
    _MAXREGS = 24

    def __init__(self, inferior, addr):
        self.inferior = inferior
        head = bytes(inferior.read_memory(addr, 24))
        if head[:8] != _MAGIC:
            raise gdb.GdbError("weft: weft_debug_info at 0x%x has no magic: not weft's descriptor" % addr)
        # The byte order is the target's: the one that reads a small version.
        self.e = "<" if struct.unpack_from("<I", head, 8)[0] < 0x10000 else ">"
        version, size, self.ptrsize, self.arch = struct.unpack_from(self.e + "IIII", head, 8)
        if version != _VERSION:
            raise gdb.GdbError("weft: debug descriptor version %d, this script reads version %d: "
                               "use the weft-gdb.py of the same weft" % (version, _VERSION))
        raw = bytes(inferior.read_memory(addr, size))
        off = self._fields(raw, 24, self._LAYOUT)
        self.frame_regs = []
        for i in range(self.frame_nregs):
            self.frame_regs.append(struct.unpack_from(self.e + "II", raw, off + 8 * i))
        self._fields(raw, off + 8 * self._MAXREGS, self._LAYOUT2)
        if self.arch not in _ARCHS:
            raise gdb.GdbError("weft: unknown machine %d in the debug descriptor" % self.arch)
        self.pcreg, self.spreg, self.fpreg, self.regnames = _ARCHS[self.arch]
        self.statusnames = {
            self.g_status_idle: "idle", self.g_status_runnable: "runnable",
            self.g_status_running: "running", self.g_status_syscall: "syscall",
            self.g_status_waiting: "waiting", self.g_status_dead: "dead",
        }
        self._reasons = None
        self._srcdir = None

    def _fields(self, raw, off, layout):
        """Sets the fields of layout from raw, from off on; returns the
        offset after them."""
        for name, kind in layout:
            if kind == "q":
                v = struct.unpack_from(self.e + "Q", raw, off)[0]
                off += 8
            elif kind == "i":
                v = struct.unpack_from(self.e + "I", raw, off)[0]
                off += 4
            else:
                v = _Field(*struct.unpack_from(self.e + "II", raw, off))
                off += 8
            setattr(self, name, v)
        return off

    # ---- reading the inferior ----------------------------------------------

    def int_at(self, buf, field, signed=False):
        return int.from_bytes(buf[field.off:field.off + field.size],
                              "little" if self.e == "<" else "big", signed=signed)

    def word(self, addr):
        fmt = self.e + ("Q" if self.ptrsize == 8 else "I")
        return struct.unpack(fmt, bytes(self.inferior.read_memory(addr, self.ptrsize)))[0]

    def field_at(self, addr, field):
        """The integer field of the struct at addr."""
        return int.from_bytes(bytes(self.inferior.read_memory(addr + field.off, field.size)),
                              "little" if self.e == "<" else "big")

    def string(self, addr, limit=256):
        if not addr:
            return None
        out = b""
        while len(out) < limit:
            try:
                chunk = bytes(self.inferior.read_memory(addr + len(out), 32))
            except gdb.MemoryError:
                break
            nul = chunk.find(b"\0")
            if nul >= 0:
                out += chunk[:nul]
                break
            out += chunk
        return out.decode("utf-8", "replace")

    def waitreason(self, r):
        if self._reasons is None:
            self._reasons = []
            for i in range(self.nwaitreasons):
                try:
                    self._reasons.append(self.string(self.word(self.waitreasons + i * self.ptrsize)))
                except gdb.MemoryError:
                    self._reasons.append(None)
        if 0 <= r < len(self._reasons) and self._reasons[r] is not None:
            return self._reasons[r]
        return "wait reason %d" % r

    def srcdir_path(self):
        if self._srcdir is None:
            self._srcdir = self.string(self.srcdir) or ""
        return self._srcdir

    def _walk(self, head, size, link, make):
        """The entries of the list whose head pointer is at head, newest
        first, made from their bytes; a cycle (a torn list) ends it."""
        addr = self.word(head)
        seen = set()
        while addr and addr not in seen:
            seen.add(addr)
            buf = bytes(self.inferior.read_memory(addr, size))
            yield make(self, addr, buf)
            addr = self.int_at(buf, link)

    def goroutines(self):
        """Every G, as G objects."""
        return self._walk(self.allg, self.g_size, self.g_allglink, G)

    def threads(self):
        """Every M, as M objects."""
        return self._walk(self.allm, self.m_size, self.m_alllink, M)


class G(object):
    def __init__(self, d, addr, buf):
        self.d = d
        self.addr = addr
        self.goid = d.int_at(buf, d.g_goid, signed=True)
        self.status = d.int_at(buf, d.g_status)
        self.waitreason = d.int_at(buf, d.g_waitreason)
        self.sp = d.int_at(buf, d.g_sp)
        self.stacklo = d.int_at(buf, d.g_stacklo)
        self.stackhi = d.int_at(buf, d.g_stackhi)
        self.m = d.int_at(buf, d.g_m)
        self.nameaddr = d.int_at(buf, d.g_name)
        self.fn = d.int_at(buf, d.g_fn)
        self.gopc = d.int_at(buf, d.g_gopc)
        self.parentgoid = d.int_at(buf, d.g_parentgoid, signed=True)
        self.issystem = d.int_at(buf, d.g_issystem) != 0
        self.stack = d.int_at(buf, d.g_stack)
        self.alias = None       # (lo, hi, copy) of a compacted stack, set by context()

    def name(self):
        return self.d.string(self.nameaddr, 64) if self.nameaddr else None

    def statustext(self):
        s = self.d.statusnames.get(self.status, "status %d" % self.status)
        if self.status == self.d.g_status_waiting:
            s += " (%s)" % self.d.waitreason(self.waitreason)
        return s

    def shown(self):
        return not self.issystem and self.status not in (self.d.g_status_dead, self.d.g_status_idle)

    def switched_out(self):
        return self.status in (self.d.g_status_runnable, self.d.g_status_waiting)

    def compacted(self):
        """For a switched-out G whose stack is compacted or being compacted
        (runtime/stack.c): (saved sp, copy), copy the address its live part
        [saved sp, stackhi) is read at, or 0 when the pages are there.
        None for any other G."""
        d = self.d
        if self.sp or not self.stacklo or not self.stack:
            return None
        try:
            sp = d.field_at(self.stack, d.stack_savedsp)
            copy = d.field_at(self.stack, d.stack_copy)
            state = d.field_at(self.stack, d.stack_cstate) & d.stack_state_mask
        except gdb.MemoryError:
            return None
        if not sp:
            return None
        if state in (d.stack_state_compacted, d.stack_state_restoring):
            return sp, copy
        if state == d.stack_state_compacting and copy:
            try:                    # the pages may be gone already: the copy is whole then
                d.inferior.read_memory(sp, 1)
            except gdb.MemoryError:
                return sp, copy
        return sp, 0

    def context(self):
        """The registers a switched-out G resumes with: [(name, value)],
        pc and sp first; None if its saved sp is not on its stack.  Also
        says whether it never ran (then it may have no frame yet: a
        goroutine builds its first frame when it first runs, and until
        then its saved sp is 0 and the registers are []).  For a G whose
        stack is compacted, sets alias: (saved sp, stackhi, copy)."""
        d = self.d
        sp, copy = self.sp, 0
        c = self.compacted() if sp == 0 else None
        if c is not None:
            sp, copy = c
            if copy:
                self.alias = (sp, self.stackhi, copy)
        elif self.sp == 0 and self.status == d.g_status_runnable:
            return [], True
        if not (self.stacklo <= sp and sp + d.frame_size <= self.stackhi):
            return None, False
        frame = bytes(d.inferior.read_memory(copy or sp, d.frame_size))
        get = lambda off: int.from_bytes(frame[off:off + d.ptrsize],
                                         "little" if d.e == "<" else "big")
        regs = [(d.pcreg, get(d.frame_pc)), (d.spreg, sp + d.frame_size)]
        for dwarf, off in d.frame_regs:
            if dwarf in d.regnames:
                regs.append((d.regnames[dwarf], get(off)))
        fresh = get(d.frame_fp) == 0 and get(d.frame_pc) == d.freshpc
        return regs, fresh


class M(object):
    def __init__(self, d, addr, buf):
        self.addr = addr
        self.id = d.int_at(buf, d.m_id, signed=True)
        self.curg = d.int_at(buf, d.m_curg)
        self.tid = d.int_at(buf, d.m_tid)
        self.exited = d.int_at(buf, d.m_exited) != 0


def descriptor():
    """The selected inferior's descriptor, or a GdbError saying why not."""
    inf = gdb.selected_inferior()
    try:
        addr = int(gdb.parse_and_eval("(unsigned long)&weft_debug_info"))
    except gdb.error:
        raise gdb.GdbError("weft: no weft_debug_info symbol: not a weft program, or a program "
                           "stripped of its symbol table (README, \"Debugging a weft program\")")
    try:
        return Descriptor(inf, addr)
    except gdb.MemoryError as e:
        raise gdb.GdbError("weft: cannot read weft_debug_info: %s" % e)


# ---- unwinding a switched-out goroutine -------------------------------------

class _FrameId(object):
    def __init__(self, sp, pc):
        self.sp = sp
        self.pc = pc


class _GoroutineUnwinder(gdb.unwinder.Unwinder):
    """While armed, the caller of the first real frame gdb unwinds (the
    selected thread's innermost) is the goroutine's saved context."""

    def __init__(self):
        super(_GoroutineUnwinder, self).__init__("weft-goroutine")
        self.regs = None        # [(register name, value)] while armed
        self.claimed = None     # (pc, sp) of the frame whose caller we replace
        self.alias = None       # (lo, hi, copy, descriptor): a compacted stack's frames
        self.inferior = None

    def __call__(self, pending):
        if self.regs is None:
            return None
        pcval = pending.read_register(self.regs[0][0])
        spval = pending.read_register(self.regs[1][0])
        key = (int(pcval), int(spval))
        if self.claimed is None:
            self.claimed = key
        elif self.claimed != key:
            return self._compacted(pending, pcval, spval) if self.alias else None
        # The frame's id says its stack address is 0: gdb stops a walk at
        # a frame "inner" to (below) the one before it, and the
        # goroutine's frames, on a stack of their own, may lie anywhere
        # relative to the thread's.
        info = pending.create_unwind_info(_FrameId(gdb.Value(0).cast(spval.type), pcval))
        for name, value in self.regs:
            info.add_saved_register(name, gdb.Value(value).cast(pending.read_register(name).type))
        return info

    def _compacted(self, pending, pcval, spval):
        """A frame on a compacted stack: its caller from its frame pointer,
        the frame record's words read in the copy.  None (gdb's own
        unwinders) for a frame elsewhere, for weft__gentry, which ends the
        stack, and where the chain leaves the stack."""
        lo, hi, copy, d = self.alias
        sp = int(spval)
        if not (lo <= sp < hi):
            return None
        try:
            b = gdb.block_for_pc(int(pcval))
            while b is not None and b.function is None:
                b = b.superblock
            if b is not None and b.function.name == "weft__gentry":
                return None
        except RuntimeError:
            pass
        fpval = pending.read_register(d.fpreg)
        fp = int(fpval)
        if not (sp <= fp and fp + 2 * d.ptrsize <= hi):
            return None
        try:
            callerfp = d.word(copy + (fp - lo))
            callerpc = d.word(copy + (fp - lo) + d.ptrsize)
        except gdb.MemoryError:
            return None
        cfa = fp + 2 * d.ptrsize
        info = pending.create_unwind_info(_FrameId(gdb.Value(cfa).cast(spval.type), pcval))
        info.add_saved_register(d.pcreg, gdb.Value(callerpc).cast(pcval.type))
        info.add_saved_register(d.spreg, gdb.Value(cfa).cast(spval.type))
        info.add_saved_register(d.fpreg, gdb.Value(callerfp).cast(fpval.type))
        return info


_unwinder = _GoroutineUnwinder()


class _Armed(object):
    """with _Armed(regs): gdb's frames are the selected thread's
    innermost, then those of the goroutine that saved regs.  Frames are recomputed on entry and exit, and the
    selected frame is put back."""

    def __init__(self, regs, g=None):
        self.regs = regs
        self.alias = g.alias + (g.d,) if g is not None and g.alias else None

    def __enter__(self):
        try:
            self.level = gdb.selected_frame().level()
        except gdb.error:
            self.level = 0
        _unwinder.regs = self.regs
        _unwinder.alias = self.alias
        _unwinder.claimed = None
        gdb.invalidate_cached_frames()
        return self

    def first(self):
        """The goroutine's innermost frame, or None."""
        f = gdb.newest_frame()
        while f is not None and _unwinder.claimed is not None:
            if (f.pc(), int(f.read_register(self.regs[1][0]))) == _unwinder.claimed:
                return f.older()
            f = f.older()
        return None

    def __exit__(self, *exc):
        _unwinder.regs = None
        _unwinder.alias = None
        _unwinder.claimed = None
        gdb.invalidate_cached_frames()
        if self.level:
            try:
                gdb.execute("frame %d" % self.level, to_string=True)
            except gdb.error:
                pass
        return False


# ---- where a goroutine is -----------------------------------------------------

def _runtime_frame(d, f):
    """A frame of weft itself (its public calls included), which 'info
    goroutines' looks past to show where the program is."""
    name = f.name() or ""
    if name.startswith("weft_"):
        return True
    sal = f.find_sal()
    src = d.srcdir_path()
    return bool(src and sal.symtab is not None and sal.symtab.fullname().startswith(src))


def _describe(f):
    name = f.name() or "0x%x" % f.pc()
    sal = f.find_sal()
    if sal.symtab is not None and sal.line:
        return "%s at %s:%d" % (name, sal.symtab.filename, sal.line)
    return name


def _where_from(d, f):
    """The first frame from f outwards that is the program's, described."""
    first = f
    depth = 0
    while f is not None and depth < 64:
        if f.name() == "weft__gentry":
            break
        try:
            if not _runtime_frame(d, f):
                return _describe(f)
            f = f.older()
        except gdb.error:
            break
        depth += 1
    return _describe(first) if first is not None else "?"


def _funcline(pc):
    """'func at file:line' of a code address (a function's first byte)."""
    name = None
    try:
        b = gdb.block_for_pc(pc)
        while b is not None and b.function is None:
            b = b.superblock
        if b is not None:
            name = b.function.print_name
    except RuntimeError:
        pass
    if name is None:
        out = gdb.execute("info symbol 0x%x" % pc, to_string=True)
        name = out.split(" in section")[0].strip() if "No symbol" not in out else "0x%x" % pc
    sal = gdb.find_pc_line(pc)
    if sal.symtab is not None and sal.line:
        return "%s at %s:%d" % (name, sal.symtab.filename, sal.line)
    return name


class _Threads(object):
    """The inferior's threads by kernel thread id, and the goroutine each
    M runs."""

    def __init__(self, d):
        self.bylwp = dict((t.ptid[1], t) for t in d.inferior.threads())
        self.ms = dict((m.addr, m) for m in d.threads())
        self.running = dict((m.curg, m) for m in self.ms.values() if m.curg and not m.exited)

    def thread_of(self, g):
        """The gdb thread g runs on (running or in a syscall), or None."""
        if g.status not in (g.d.g_status_running, g.d.g_status_syscall):
            return None
        m = self.running.get(g.addr) or self.ms.get(g.m)
        return self.bylwp.get(m.tid) if m is not None else None


class _OnThread(object):
    """with _OnThread(t): t selected, the old selection put back after."""

    def __init__(self, thread):
        self.thread = thread

    def __enter__(self):
        self.old = gdb.selected_thread()
        try:
            self.level = gdb.selected_frame().level()
        except gdb.error:
            self.level = 0
        self.thread.switch()
        return self

    def __exit__(self, *exc):
        if self.old is not None and self.old.is_valid():
            self.old.switch()
            if self.level:
                try:
                    gdb.execute("frame %d" % self.level, to_string=True)
                except gdb.error:
                    pass
        return False


def _where(d, threads, g):
    t = threads.thread_of(g)
    if t is not None:
        with _OnThread(t):
            return _where_from(d, gdb.newest_frame()), t
    if not g.switched_out():
        return "?", None
    regs, fresh = g.context()
    if regs is None:
        return "? (saved stack pointer 0x%x is off its stack)" % g.sp, None
    if fresh:
        return "%s (not started)" % _funcline(g.fn), None
    with _Armed(regs, g) as a:
        f = a.first()
        return (_where_from(d, f) if f is not None else "?"), None


def _require_frames():
    if gdb.selected_thread() is None:
        raise gdb.GdbError("weft: no process or core file")


class InfoGoroutines(gdb.Command):
    """List weft's goroutines: id, status (with the wait reason), where.

Usage: info goroutines
"*" marks a goroutine that is on a thread (running, or in a system call),
whose LWP follows.  The place shown is the first frame of the program's own
code, past weft's functions; "goroutine N bt" shows the whole stack."""

    def __init__(self):
        super(InfoGoroutines, self).__init__("info goroutines", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        _require_frames()
        d = descriptor()
        threads = _Threads(d)
        rows = []
        for g in sorted((g for g in d.goroutines() if g.shown()), key=lambda g: g.goid):
            where, t = _where(d, threads, g)
            if t is not None:
                where += " (LWP %d)" % t.ptid[1]
            name = g.name()
            if name:
                where += ' "%s"' % name
            rows.append(("*" if t is not None else " ", str(g.goid), g.statustext(), where))
        if not rows:
            gdb.write("No goroutines.\n")
            return
        wid = max(len(r[1]) for r in rows)
        wst = max(len(r[2]) for r in rows)
        for mark, goid, status, where in rows:
            gdb.write("%s %*s  %-*s  %s\n" % (mark, wid, goid, wst, status, where))


_LEVEL = re.compile(r"^#(\d+)(\s+)")


def _goroutine_bt(skip, btargs):
    """bt of the armed goroutine: gdb numbers frames from the selected
    thread's innermost, and the first `skip` are the thread's (the ones
    the unwinder stands in for).  They are left out and the rest numbered
    from 0; a frame count in btargs counts the goroutine's frames."""
    args = []
    for a in btargs.split():
        args.append(str(int(a) + skip) if a.isdigit() else a)
    out = gdb.execute("backtrace " + " ".join(args), to_string=True)
    lines = out.splitlines(True)
    for i, line in enumerate(lines):
        m = _LEVEL.match(line)
        if m and int(m.group(1)) == skip:
            break
    else:
        return out
    res = []
    for line in lines[i:]:
        m = _LEVEL.match(line)
        if m:
            level = ("#%d" % (int(m.group(1)) - skip)).ljust(len(m.group(0)))
            line = level + line[m.end():]
        res.append(line)
    return "".join(res)


def _backtrace(d, threads, g, btargs):
    """Writes goroutine g's header and backtrace."""
    name = g.name()
    gdb.write("goroutine %d%s [%s]:\n" % (g.goid, ' "%s"' % name if name else "", g.statustext()))
    t = threads.thread_of(g)
    if t is not None:
        gdb.write("on thread %d (LWP %d):\n" % (t.num, t.ptid[1]))
        with _OnThread(t):
            gdb.write(gdb.execute("backtrace " + btargs, to_string=True))
    elif not g.switched_out():
        gdb.write("(no stack: neither switched out nor on a thread)\n")
    else:
        regs, fresh = g.context()
        if regs is None:
            gdb.write("(its saved stack pointer 0x%x is off its stack [0x%x, 0x%x))\n"
                      % (g.sp, g.stacklo, g.stackhi))
        elif fresh:
            gdb.write("(not started: it will run %s)\n" % _funcline(g.fn))
        else:
            with _Armed(regs, g) as a:
                first = a.first()
                if first is None:
                    gdb.write("(gdb found no frame in its saved context)\n")
                else:
                    gdb.write(_goroutine_bt(first.level(), btargs))
    if g.gopc:
        creator = _funcline(g.gopc - 1)
        gdb.write("created by %s%s\n" % (creator, " in goroutine %d" % g.parentgoid
                                         if g.parentgoid else ""))


class GoroutineCommand(gdb.Command):
    """Show a goroutine's stack.

Usage: goroutine N bt [OPTIONS]
       goroutine all bt [OPTIONS]
N is a goroutine id, as 'info goroutines' lists them; OPTIONS are bt's
(full, -frame-arguments all, a frame count, ...).  A goroutine on a
thread (running, or in a system call) is shown as that thread's stack;
a parked one from the context it saved, innermost frame first (weft's
own frames of the switch, then the call that parked it)."""

    def __init__(self):
        super(GoroutineCommand, self).__init__("goroutine", gdb.COMMAND_STACK)

    def invoke(self, arg, from_tty):
        argv = arg.split(None, 2)
        if len(argv) < 2 or argv[1] not in ("bt", "backtrace", "where"):
            raise gdb.GdbError("usage: goroutine N bt [OPTIONS] | goroutine all bt [OPTIONS]")
        btargs = argv[2] if len(argv) > 2 else ""
        _require_frames()
        d = descriptor()
        threads = _Threads(d)
        gs = sorted((g for g in d.goroutines() if g.shown()), key=lambda g: g.goid)
        if argv[0] == "all":
            for i, g in enumerate(gs):
                if i:
                    gdb.write("\n")
                _backtrace(d, threads, g, btargs)
            return
        try:
            goid = int(argv[0], 0)
        except ValueError:
            raise gdb.GdbError("goroutine: '%s' is not a goroutine id (or 'all')" % argv[0])
        for g in gs:
            if g.goid == goid:
                _backtrace(d, threads, g, btargs)
                return
        raise gdb.GdbError("goroutine %d: no such goroutine (see info goroutines)" % goid)


# ---- gcore: goroutine stacks in the core ------------------------------------

_lifted = [False]


def _live(inf):
    if inf.pid == 0:
        return False
    conn = getattr(inf, "connection", None)
    return conn is None or conn.type != "core"


def _guards(lift):
    """Calls weft__stack_guards(lift) in the stopped inferior, no other
    thread running meanwhile.  Returns its result, or None if it cannot."""
    inf = gdb.selected_inferior()
    if not _live(inf) or gdb.selected_thread() is None:
        return None
    try:
        d = descriptor()
    except gdb.GdbError:
        return None             # not a weft program
    if not d.guards:
        return None
    saved = [("scheduler-locking", gdb.parameter("scheduler-locking")),
             ("unwindonsignal", "on" if gdb.parameter("unwindonsignal") else "off")]
    try:
        gdb.execute("set scheduler-locking on", to_string=True)
        gdb.execute("set unwindonsignal on", to_string=True)
        return int(gdb.parse_and_eval("((int (*)(int))0x%x)(%d)" % (d.guards, lift)))
    except gdb.error as e:
        gdb.write("weft: could not %s the goroutine stacks' guard pages: %s\n"
                  % ("lift" if lift else "put back", e))
        return None
    finally:
        for name, value in saved:
            gdb.execute("set %s %s" % (name, value), to_string=True)


class _GcorePrepare(gdb.Command):
    """weft's hook-gcore: lifts the guard pages inside goroutine stack slabs
so that gcore can copy the stacks (runtime/stack.c)."""

    def __init__(self):
        super(_GcorePrepare, self).__init__("weft-gcore-prepare", gdb.COMMAND_MAINTENANCE)

    def invoke(self, arg, from_tty):
        r = _guards(1)
        if r is not None and r >= 0:
            _lifted[0] = True
            if r > 0:
                gdb.write("weft: guard pages of %d goroutine stacks lifted for gcore\n" % r)
        elif r is not None:
            gdb.write("weft: lifting the guard pages failed (%d): goroutine stacks may be "
                      "missing from the core\n" % r)


class _GcoreFinish(gdb.Command):
    """weft's hookpost-gcore: puts the guard pages back."""

    def __init__(self):
        super(_GcoreFinish, self).__init__("weft-gcore-finish", gdb.COMMAND_MAINTENANCE)

    def invoke(self, arg, from_tty):
        _restore()


def _restore():
    if not _lifted[0]:
        return
    r = _guards(0)
    if r is not None:
        _lifted[0] = False
        if r < 0:
            gdb.write("weft: putting the guard pages back failed (%d)\n" % r)


def _before_prompt():
    # A gcore that failed skips its post-hook: never leave the guards off.
    if _lifted[0]:
        _restore()


def _install():
    InfoGoroutines()
    GoroutineCommand()
    _GcorePrepare()
    _GcoreFinish()
    gdb.unwinder.register_unwinder(None, _unwinder, replace=True)
    # gcore is an alias: the hooks go on the command itself.
    gdb.execute("define hook-generate-core-file\nweft-gcore-prepare\nend", to_string=True)
    gdb.execute("define hookpost-generate-core-file\nweft-gcore-finish\nend", to_string=True)
    gdb.events.before_prompt.connect(_before_prompt)


# Once per gdb session, however many objects carry the script.
if not getattr(gdb, "_weft_gdb_loaded", False):
    gdb._weft_gdb_loaded = True
    _install()
