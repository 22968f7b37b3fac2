"""The order of a protocol's slot accesses as compiled: read from the
disassembly (binutils' objdump) of the module stress runs.

Only x86-64 object code is read.  In a writer loop the slot is addressed as
``DISP(%reg)`` from one base register; the base registers are those the
loop uses for a byte access to ``valid`` or ``dumped`` (no other structure a
loop touches has byte fields), and each store through them at a field's
offset is one of the protocol's stores (an 8-byte store at ``order`` covers
``order`` and ``gfp``: GCC merges the two)."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

# struct memalloc_info (csrc/memalloc.h): offset -> (field, size)
FIELDS = {0: ("sequence", 4), 4: ("valid", 1), 5: ("dumped", 1), 8: ("start", 8),
          16: ("order", 4), 20: ("gfp", 4), 24: ("witness", 8)}
_SUFFIX = {"b": 1, "w": 2, "l": 4, "q": 8}
_LINE = re.compile(r"^\s*([0-9a-f]+):\s+(\S+)\s*(.*)$")
_MEM = re.compile(r"^(-?0x[0-9a-f]+|-?\d+)?\((%\w+)\)$")
_NO_WRITE = ("cmp", "test", "push")


class ObjdumpError(RuntimeError):
    """No objdump, or it could not read the module."""


@dataclass(frozen=True)
class Access:
    """One instruction's access to the slot."""

    addr: int
    kind: str  # load, store, rmw
    fields: tuple[str, ...]
    text: str


def _reg_size(reg: str) -> int:
    r = reg.lstrip("%")
    if r.startswith("xmm"):
        return 16
    if r.endswith("b") or r in ("al", "bl", "cl", "dl", "sil", "dil", "bpl", "spl"):
        return 1
    if r.endswith("w") or r in ("ax", "bx", "cx", "dx", "si", "di", "bp", "sp"):
        return 2
    if r.endswith("d") or r.startswith("e"):
        return 4
    return 8


def _split_operands(ops: str) -> list[str]:
    ops = ops.split("#")[0].split("<")[0].strip()
    out, depth, cur = [], 0, ""
    for ch in ops:
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
            continue
        depth += {"(": 1, ")": -1}.get(ch, 0)
        cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def disassemble(path: str | Path) -> dict[str, list[tuple[int, str, list[str]]]]:
    """{symbol: [(address, mnemonic, operands)]} of a shared object."""
    exe = shutil.which("objdump")
    if exe is None:
        raise ObjdumpError("objdump (binutils) is not installed")
    r = subprocess.run([exe, "-d", "--no-show-raw-insn", str(path)], capture_output=True,
                       text=True, timeout=300)
    if r.returncode != 0:
        raise ObjdumpError(f"objdump failed on {path}: {r.stderr.strip()[:200]}")
    funcs: dict[str, list] = {}
    at: dict[int, list] = {}
    calls: dict[int, list[str]] = {}
    cur: list | None = None
    for line in r.stdout.splitlines():
        m = re.match(r"^([0-9a-f]+) <([^>]+)>:$", line)
        if m:
            cur = funcs.setdefault(m.group(2), [])
            at[int(m.group(1), 16)] = cur
            continue
        m = _LINE.match(line)
        if m and cur is not None:
            cur.append((int(m.group(1), 16), m.group(2), _split_operands(m.group(3))))
            t = re.search(r"<([^>+]+)>", m.group(3))
            if t and m.group(2).startswith(("call", "jmp")):
                calls.setdefault(id(cur), []).append(t.group(1))
    # GCC folds identical functions (-fipa-icf): one body, several names
    t = subprocess.run([exe, "-t", str(path)], capture_output=True, text=True, timeout=300)
    for line in t.stdout.splitlines():
        m = re.match(r"^([0-9a-f]+) .{7} F \S+\s+[0-9a-f]+\s+(\S+)$", line)
        if m and m.group(2) not in funcs and int(m.group(1), 16) in at:
            funcs[m.group(2)] = at[int(m.group(1), 16)]
    # a thunk (one jmp to the function it was folded into) stands for it
    for sym, insns in list(funcs.items()):
        targets = calls.get(id(insns), [])
        if len(insns) <= 2 and insns and insns[0][1].startswith("jmp") and targets \
                and targets[0] in funcs:
            funcs[sym] = funcs[targets[0]]
    # and a static one folded into another keeps no name: reach it from its
    # caller (P_writer_run tail-calls P_writer_emu)
    for sym in list(funcs):
        if sym.endswith("_writer_run"):
            emu = sym[:-len("_writer_run")] + "_writer_emu"
            targets = [t for t in calls.get(id(funcs[sym]), []) if t.endswith("_writer_emu")]
            if emu not in funcs and targets and targets[0] in funcs:
                funcs[emu] = funcs[targets[0]]
    return funcs


def _width(mnem: str, ops: list[str], mem_i: int) -> int:
    if mnem.startswith(("movz", "movs")) and len(mnem) >= 6 and mnem[4] in _SUFFIX:
        return _SUFFIX[mnem[4]]  # movzbl: a byte from memory
    if mnem in ("movq", "movd"):
        return 8 if mnem == "movq" else 4
    regs = [o for i, o in enumerate(ops) if i != mem_i and o.startswith("%")]
    if regs:
        return _reg_size(regs[0])
    if mnem[-1] in _SUFFIX and len(mnem) > 2:
        return _SUFFIX[mnem[-1]]
    return 8


def _slot_operand(op: str, bases: set[str]) -> int | None:
    m = _MEM.match(op)
    if not m or m.group(2) not in bases:
        return None
    return int(m.group(1), 0) if m.group(1) else 0


def slot_accesses(insns: list[tuple[int, str, list[str]]]) -> list[Access]:
    """The slot accesses of one function, in address order."""
    bases = set()
    for _, mnem, ops in insns:
        for i, op in enumerate(ops):
            m = _MEM.match(op)
            if m and m.group(1) in ("0x4", "0x5") and _width(mnem, ops, i) <= 2:
                bases.add(m.group(2))
    out = []
    for addr, mnem, ops in insns:
        if mnem.startswith(("lea", "nop", "prefetch")) or mnem.endswith("nop"):
            continue
        for i, op in enumerate(ops):
            off = _slot_operand(op, bases)
            if off is None or off not in FIELDS:
                continue
            size = _width(mnem, ops, i)
            fields = tuple(f for o, (f, n) in FIELDS.items() if off <= o < off + size)
            if i < len(ops) - 1 or mnem.startswith(_NO_WRITE):
                kind = "load"
            elif mnem.startswith("mov"):
                kind = "store"
            else:
                kind = "rmw"
            out.append(Access(addr, kind, fields, f"{mnem} {','.join(ops)}"))
    return out


def function(funcs: dict, name: str) -> list[tuple[int, str, list[str]]]:
    """The instructions of static function ``name`` (GCC may suffix it:
    name.isra.0, name.constprop.0)."""
    for sym, insns in funcs.items():
        if sym == name or sym.startswith(name + "."):
            return insns
    raise KeyError(name)


def writer_stores(funcs: dict, ident: str) -> list[tuple[str, tuple[str, ...]]]:
    """The slot stores (and read-modify-writes) of a protocol's emulator
    start_memalloc_timer() ``<ident>_start_emu`` (the function its writer
    loop calls), in address order."""
    return [(a.kind, a.fields) for a in slot_accesses(function(funcs, f"{ident}_start_emu"))
            if a.kind != "load"]


DATA_FIELDS = ("start", "order", "gfp", "dumped")


def window_signature(stores: list[tuple[str, tuple[str, ...]]]) -> tuple:
    """Where each data field's store is relative to the sequence stores:
    (sequence stores in all, ((field, sequence stores before it), ...)),
    for the first section a loop body compiles.  This is what decides
    whether a store lands inside the odd window; the order of data stores
    between two sequence stores is not (a seqcount reader cannot see it),
    and GCC's register allocation may change it with unrelated code."""
    seq = 0
    where: dict[str, int] = {}
    for _, fields in stores:
        if "sequence" in fields:
            seq += 1
        for f in fields:
            if f in DATA_FIELDS and f not in where:
                where[f] = seq
    return seq, tuple(sorted(where.items()))
