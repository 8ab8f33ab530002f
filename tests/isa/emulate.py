"""emulate.py - runs one function of a built kernel object on an emulated
x86-64 CPU, for the ISA variants this machine cannot execute.

dispatch.c sends AVX-512 machines to kernels that a machine without AVX-512
never runs, so its unit tests skip them. Here Bochs' CPU model (through the
bochscpu-python package) executes them instead: the function's machine code
is taken from the object file the build produced (build/obj/...), linked
alone at a fixed address, so what is checked is what ships. The CPU runs in
64-bit mode with identity-mapped pages for code, stack and data, and with
the x87/SSE/AVX/AVX-512 state enabled in XCR0. Calls follow the System V ABI: integer and pointer
arguments in rdi, rsi, rdx, rcx, r8, r9; floats in xmm0-xmm7; no stack
arguments. The object must link on its own: a function that calls into
another object or libc cannot run here.

The 0.4.0 wheel references two glibc 2.38 symbols (__isoc23_strtoull,
__isoc23_sscanf) although it is tagged manylinux_2_28; on an older glibc
(Debian 12 has 2.36) `load_bochscpu` first loads a two-line shim that maps
them to strtoull and vsscanf.
"""
import ctypes
import os
import struct
import subprocess

import numpy as np

PAGE = 4096
CODE, RET, STACK_TOP, HEAP = 0x400000, 0x3ff000, 0x2000000, 0x4000000

SHIM = r"""
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
unsigned long long __isoc23_strtoull(const char *s, char **e, int b) { return strtoull(s, e, b); }
int __isoc23_sscanf(const char *s, const char *f, ...) {
    va_list a; va_start(a, f); int r = vsscanf(s, f, a); va_end(a); return r;
}
"""


def load_bochscpu(workdir):
    """Imports bochscpu, with the glibc shim when this glibc lacks C23 names."""
    try:
        ctypes.CDLL(None).__isoc23_strtoull  # noqa: B018  (glibc >= 2.38)
    except AttributeError:
        src, lib = os.path.join(workdir, "isoc23.c"), os.path.join(workdir, "libisoc23.so")
        with open(src, "w") as f:
            f.write(SHIM)
        subprocess.run(["gcc", "-shared", "-fPIC", "-O2", src, "-o", lib], check=True)
        ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)
    import bochscpu
    import bochscpu.cpu
    import bochscpu.memory
    return bochscpu


def link(obj, workdir):
    """Links an object file alone at a fixed address (no libc): its loadable
    segments as (address, bytes) and its functions' addresses. A function
    that calls outside the object fails to link here."""
    out = os.path.join(workdir, os.path.basename(obj) + ".elf")
    subprocess.run(["ld", "-static", "-nostdlib", "-e", "0", "-Ttext-segment", hex(CODE),
                    "-o", out, obj], check=True, capture_output=True)
    with open(out, "rb") as f:
        elf = f.read()
    phoff, = struct.unpack_from("<Q", elf, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
    segments = []
    for i in range(phnum):
        ptype, _, offset, vaddr, _, filesz, memsz = struct.unpack_from(
            "<IIQQQQQ", elf, phoff + i * phentsize)
        if ptype == 1:  # PT_LOAD
            segments.append((vaddr, elf[offset:offset + filesz] + bytes(memsz - filesz)))
    syms = {}
    nm = subprocess.run(["nm", "--defined-only", out], capture_output=True, text=True,
                        check=True).stdout
    for line in nm.splitlines():
        addr, kind, name = line.split()
        if kind in "tT":
            syms[name] = int(addr, 16)
    return segments, syms


def c_values(workdir, includes, exprs):
    """The integer values of C expressions (offsetof, sizeof, enum names)
    under the project's headers, from a program compiled here, so that the
    structs built in emulated memory follow the headers as they are."""
    src, exe = os.path.join(workdir, "values.c"), os.path.join(workdir, "values")
    with open(src, "w") as f:
        f.write("#include <stddef.h>\n#include <stdio.h>\n")
        f.writelines(f"#include \"{h}\"\n" for h in includes)
        f.write("int main(void) {\n")
        f.writelines(f"    printf(\"%lld\\n\", (long long)({e}));\n" for e in exprs)
        f.write("    return 0;\n}\n")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    subprocess.run(["gcc", "-std=c11", "-I", os.path.join(root, "include"), "-I",
                    os.path.join(root, "src"), src, "-o", exe], check=True)
    out = subprocess.run([exe], capture_output=True, text=True, check=True).stdout.split()
    return dict(zip(exprs, map(int, out)))


class Machine:
    """One emulated CPU with an object's segments (see link), a stack and a
    heap."""

    def __init__(self, bochscpu, segments, heap_bytes=8 << 20):
        self.bx, self.mem = bochscpu, bochscpu.memory
        self.tables = {}
        self.next_table = 0x10000
        self.pml4 = self._table()
        for va, data in segments:
            self._map(va, len(data))
        self._map(RET, PAGE)
        self._map(STACK_TOP - 16 * PAGE, 16 * PAGE)
        self._map(HEAP, heap_bytes)
        self.heap_end, self.heap_next = HEAP + heap_bytes, HEAP
        for gpa, t in self.tables.items():
            self.mem.phy_write(gpa, list(t))
        for va, data in segments:
            self.write(va, data)
        self.write(RET, b"\xf4" * 16)  # hlt, never reached: the hook stops at RET
        self.faults = []

    def _table(self):
        gpa = self.next_table
        self.next_table += PAGE
        self.mem.page_insert(gpa, self.mem.allocate_host_page())
        self.tables[gpa] = bytearray(PAGE)
        return gpa

    def _entry(self, table, index):
        """The next level's table under `table[index]`, created on first use."""
        v = struct.unpack_from("<Q", self.tables[table], index * 8)[0]
        if not v:
            v = self._table() | 0x3  # present, writable
            struct.pack_into("<Q", self.tables[table], index * 8, v)
        return v & ~0xFFF

    def _map(self, va, size):
        """Identity-maps [va, va + size): guest physical = virtual."""
        for page in range(va // PAGE * PAGE, va + size, PAGE):
            self.mem.page_insert(page, self.mem.allocate_host_page())
            pdpt = self._entry(self.pml4, (page >> 39) & 511)
            pd = self._entry(pdpt, (page >> 30) & 511)
            pt = self._entry(pd, (page >> 21) & 511)
            struct.pack_into("<Q", self.tables[pt], ((page >> 12) & 511) * 8, page | 0x3)

    def write(self, va, data):
        if not self.mem.virt_write(self.pml4, va, list(bytes(data))):
            raise RuntimeError(f"write to unmapped {va:#x}")

    def read(self, va, nbytes):
        return bytes(self.mem.virt_read(self.pml4, va, nbytes))

    def put(self, array):
        """Copies a numpy array onto the heap (64-byte aligned); its address."""
        va = (self.heap_next + 63) // 64 * 64
        data = np.ascontiguousarray(array).tobytes()
        if va + len(data) > self.heap_end:
            raise MemoryError("emulated heap exhausted")
        self.write(va, data)
        self.heap_next = va + len(data)
        return va

    def get(self, va, dtype, count):
        return np.frombuffer(self.read(va, np.dtype(dtype).itemsize * count), dtype=dtype)

    def reset_heap(self):
        self.heap_next = HEAP

    def call(self, entry, ints=(), floats=(), xcr0=0xE7):
        """Runs the function at address `entry` until it returns. The default
        xcr0 enables x87, SSE, AVX, opmask, ZMM_Hi256 and Hi16_ZMM state."""
        bx = self.bx
        st = bx.State()
        bx.cpu.set_long_mode(st)
        cr4 = bx.cpu.ControlRegister(st.cr4)
        cr4.OSFXSR = cr4.OSXMMEXCPT = cr4.OSXSAVE = True
        st.cr4 = int(cr4)
        st.xcr0 = xcr0
        st.cr3 = self.pml4
        cs, ds = bx.Segment(), bx.Segment()
        cs.present, cs.selector, cs.base, cs.limit, cs.attr = True, 0x10, 0, 0xFFFFFFFF, 0x209B
        ds.present, ds.selector, ds.base, ds.limit, ds.attr = True, 0x18, 0, 0xFFFFFFFF, 0xC093
        st.cs, st.ds, st.es, st.ss, st.fs, st.gs = cs, ds, ds, ds, ds, ds
        st.rflags = 0x202
        st.mxcsr = 0x1F80
        st.rip = entry
        sp = STACK_TOP - 64
        self.write(sp, struct.pack("<Q", RET))
        st.rsp = sp
        regs = ("rdi", "rsi", "rdx", "rcx", "r8", "r9")
        if len(ints) > len(regs) or len(floats) > 8:
            raise ValueError("stack arguments are not supported")
        for r, v in zip(regs, ints):
            setattr(st, r, int(v) & (2**64 - 1))
        zmm = st.zmm
        for i, v in enumerate(floats):
            z = bx._bochscpu.Zmm()
            z.q = [struct.unpack("<I", struct.pack("<f", v))[0]] + [0] * 7
            zmm[i] = z
        st.zmm = zmm
        sess = bx.Session()
        sess.missing_page_handler = lambda gpa: self.faults.append(("missing page", gpa))
        sess.cpu.set_state(st)
        hook = bx.Hook()

        def before(s, cpu_id, _):
            if s.cpu.rip == RET:
                s.stop()

        def exception(s, cpu_id, vector, error):
            self.faults.append(("exception", vector, error, s.cpu.rip))
            s.stop()

        hook.before_execution = before
        hook.exception = exception
        self.faults = []
        sess.run([hook])
        if self.faults:
            raise RuntimeError(f"emulated call faulted: {self.faults}")
        if sess.cpu.rip != RET:
            raise RuntimeError(f"emulated call stopped at {sess.cpu.rip:#x}")
