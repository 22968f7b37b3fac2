"""Workload scenarios: what a machine runs, not what happens to it.

A scenario (TOML) describes the memory (zones, page cache, how fast reclaim
and writeback go) and the processes: thread groups sharing one mm, each
thread with its allocation requests (gfp, order, how often, what the pages
become) and the locks it holds while allocating.  Stalls, OOM kills,
TIF_MEMDIE and livelocks are not in the file: they come out of the model of
Linux 4.4's allocator (``mm``, ``oom``, ``tasks``).

The checks reuse ``scenario``'s: every bad value is one line naming the
file, the key, what was expected and what was found (``ScenarioError``).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from kmallocwd.watchdog import scenario as sc
from kmallocwd.watchdog.scenario import Range, ScenarioError, Zone

PAGE_KB = 4
MAX_FILE_BYTES = 1 << 20  # a scenario file is a few kB; refuse anything over 1 MiB
MAX_KB = 1 << 40  # 1 PiB: any larger memory is a typo
MAX_KBPS = 1 << 40

# What the pages of a request become once it succeeds.
ANON = "anon"  # the process's RSS (its mm), freed when the last thread leaves exit_mm
PAGECACHE = "pagecache"  # clean page cache: reclaimable at once
DIRTY = "dirty"  # dirty page cache: reclaimable once written back
KERNEL = "kernel"  # unreclaimable kernel memory (slab), kept
BUFFER = "buffer"  # freed again hold_s after it was allocated
USES = (ANON, PAGECACHE, DIRTY, KERNEL, BUFFER)

MM_LOCK_PREFIX = "&mm->"  # lock names of the thread's own mm: one lock per process
MMAP_SEM = "&mm->mmap_sem"  # an rw_semaphore: a use says ":read" or ":write" (default write)
LOCK_MODES = ("read", "write")


def split_lock(spec: str) -> tuple[str, str | None]:
    """``"&mm->mmap_sem:read"`` -> ("&mm->mmap_sem", "read"); a name without
    a mode suffix -> (name, None).  A lock used with a mode is an
    rw_semaphore (mmap_sem always is); without one, a mutex."""
    name, sep, mode = spec.rpartition(":")
    if sep and mode in LOCK_MODES and name:
        return name, mode
    return spec, None


def is_rwsem(name: str, mode: str | None) -> bool:
    return mode is not None or name == MMAP_SEM


@dataclass(frozen=True)
class ZoneSpec:
    zone: Zone  # name, present_kb, min_kb, free blocks per order
    file_kb: int  # clean page cache
    dirty_kb: int  # dirty page cache
    kernel_kb: int  # unreclaimable kernel memory


@dataclass(frozen=True)
class MemorySpec:
    zones: tuple[ZoneSpec, ...]
    reclaim_kbps: float  # how fast reclaim (direct or kswapd) frees clean page cache
    writeback_kbps: float  # how fast dirty page cache is written back (0: stuck)
    # the filesystem's ->writepage() writes a page kswapd's pageout() hands it
    # (false: it redirties it, as ext4 does with a delayed-allocation page)
    writepage_from_reclaim: bool = True

    def scaled(self, k: float) -> "MemorySpec":
        return replace(self, reclaim_kbps=self.reclaim_kbps / k,
                       writeback_kbps=self.writeback_kbps / k)


@dataclass(frozen=True)
class ThreadSpec:
    """One kind of thread of a process (``count`` of them)."""

    name: str  # the comm
    pids: tuple[int, ...]
    gfp: int
    order: int
    interval_s: Range  # think time before each burst of requests (interruptible sleep)
    burst: int  # requests per wake-up
    use: str  # what the pages become
    hold_s: Range  # "buffer": how long the pages are kept
    locks: tuple[str, ...]  # taken in order around each burst, released in reverse; an
    # rw_semaphore's name ends in ":read" or ":write" (split_lock())
    killable: bool  # mutex_lock_killable() (TASK_KILLABLE) instead of mutex_lock()
    memalloc_noio: bool  # PF_MEMALLOC_NOIO: memalloc_noio_flags() masks __GFP_IO|__GFP_FS
    start_s: Range  # when its loop starts
    idle: bool  # no requests at all: sleeps until killed (a main thread in wait4())
    writeback: bool = False  # the flusher: writes dirty pages back, after allocating for the I/O
    # a kworker's work item, as print_worker_info() shows it ("" for none;
    # the flusher's default: "writeback wb_workfn (flush-8:0)")
    workqueue: str = ""

    def scaled(self, k: float) -> "ThreadSpec":
        return replace(self, interval_s=self.interval_s.scaled(k), hold_s=self.hold_s.scaled(k),
                       start_s=self.start_s.scaled(k))


@dataclass(frozen=True)
class ProcessSpec:
    """A thread group: one mm, one tgid (its first thread's pid), SIGKILL to all."""

    name: str
    tgid: int
    ppid: int
    rss_kb: int  # anonymous memory it has at boot
    oom_score_adj: int
    kthread: bool  # a kernel thread: no mm, never an OOM victim
    threads: tuple[ThreadSpec, ...]

    @property
    def pids(self) -> tuple[int, ...]:
        return tuple(p for t in self.threads for p in t.pids)


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    timeout_s: float  # the watchdog timeout the scenario is written for (--timeout default)
    memory: MemorySpec
    processes: tuple[ProcessSpec, ...]
    source: str = ""
    cpus: int = 1  # the machine's CPUs (4.20 PSI's per-CPU states); tasks are spread over them

    @property
    def tasks(self) -> int:
        return sum(len(p.pids) for p in self.processes)

    @property
    def zones(self) -> tuple[Zone, ...]:
        return tuple(z.zone for z in self.memory.zones)

    def scaled(self, k: float) -> "Workload":
        """Every workload time multiplied by k, every rate divided by k."""
        if k == 1:
            return self
        return replace(self, memory=self.memory.scaled(k), processes=tuple(
            replace(p, threads=tuple(t.scaled(k) for t in p.threads)) for p in self.processes))


DEFAULT_MEMORY = MemorySpec(
    zones=(ZoneSpec(Zone("DMA", 15992, 132, (1, 2, 1, 0, 2, 1, 1, 0, 1, 1, 3)), 0, 0, 0),
           ZoneSpec(Zone("DMA32", 3129216, 27548, (220, 180, 97, 61, 40, 22, 13, 9, 6, 4, 700)),
                    400000, 0, 0),
           ZoneSpec(Zone("Normal", 1048576, 9208, (340, 210, 130, 77, 41, 19, 10, 4, 2, 1, 150)),
                    200000, 0, 0)),
    reclaim_kbps=400000, writeback_kbps=100000)

_SCENARIO_KEYS = ("name", "description", "timeout", "cpus")
MAX_CPUS = 256
_TOP_KEYS = ("scenario", "memory", "process")
_MEMORY_KEYS = ("zone", "reclaim_kbps", "writeback_kbps", "writepage_from_reclaim")
_ZONE_EXTRA = ("file_kb", "dirty_kb", "kernel_kb")
_PROCESS_KEYS = ("name", "pid", "ppid", "rss_kb", "oom_score_adj", "kthread", "thread")
_THREAD_KEYS = ("name", "pid", "count", "gfp", "order", "interval_s", "burst", "use", "hold_s",
                "locks", "killable", "memalloc_noio", "start_s", "idle", "writeback", "workqueue")


def _name(c: sc._Check, key: str, v: Any) -> str:
    """A comm: a non-empty printable string, cut to 15 characters."""
    name = c.string(key, v)
    if not name.isprintable():
        raise c.fail(key, "a name without control characters", v)
    return sc.comm(name)


def _bool(c: sc._Check, key: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise c.fail(key, "true or false", v)
    return v


def parse(data: dict, file: str, default_name: str) -> Workload:
    c = sc._Check(file)
    c.keys("", data, _TOP_KEYS)
    head = c.table("scenario", data.get("scenario", {}))
    c.keys("scenario", head, _SCENARIO_KEYS)
    name = c.string("scenario.name", head.get("name", default_name))
    if not name.isprintable():  # it is printed in the summary: no forged lines
        raise c.fail("scenario.name", "a name without control characters", name)
    description = c.string("scenario.description", head.get("description", ""), lo=0)
    timeout = c.number("scenario.timeout", head.get("timeout", 10), 0, 86400, lo_open=True)
    cpus = c.integer("scenario.cpus", head.get("cpus", 1), 1, MAX_CPUS)
    memory = _memory(c, data["memory"]) if "memory" in data else DEFAULT_MEMORY
    raw = data.get("process")
    if not isinstance(raw, list) or not raw:
        raise c.fail("process", "an array of tables ([[process]]), at least one", raw)
    procs: list[ProcessSpec] = []
    seen: dict[int, str] = {}
    next_pid = 1000
    for i, p in enumerate(raw):
        proc = _process(c, f"process[{i}]", p, next_pid)
        for j, t in enumerate(proc.threads):
            for pid in t.pids:
                if pid in seen:
                    raise c.fail(f"process[{i}].thread[{j}].pid",
                                 f"pids not used by another task ({pid} is {seen[pid]}'s)", pid)
                seen[pid] = t.name
        next_pid = max(proc.pids) + 1
        procs.append(proc)
    total = sum(len(p.pids) for p in procs)
    if total > sc.MAX_TASKS:
        raise c.fail("process", f"at most {sc.MAX_TASKS} tasks in all", f"{total} tasks")
    # for_each_process() walks the task list in fork order: by tgid here.
    procs.sort(key=lambda p: p.tgid)
    return Workload(name, description, timeout, memory, tuple(procs), file, cpus)


def _memory(c: sc._Check, m: Any) -> MemorySpec:
    m = c.table("memory", m)
    c.keys("memory", m, _MEMORY_KEYS)
    zones = DEFAULT_MEMORY.zones
    if "zone" in m:
        raw = m["zone"]
        if not isinstance(raw, list) or not raw:
            raise c.fail("memory.zone", "an array of tables ([[memory.zone]])", raw)
        zones = tuple(_zone(c, f"memory.zone[{i}]", z) for i, z in enumerate(raw))
    return MemorySpec(
        zones=zones,
        reclaim_kbps=c.number("memory.reclaim_kbps", m.get("reclaim_kbps", 400000), 0, MAX_KBPS,
                              lo_open=True),
        writeback_kbps=c.number("memory.writeback_kbps", m.get("writeback_kbps", 100000), 0,
                                MAX_KBPS),
        writepage_from_reclaim=_bool(c, "memory.writepage_from_reclaim",
                                     m.get("writepage_from_reclaim", True)))


def _zone(c: sc._Check, key: str, z: Any) -> ZoneSpec:
    z = dict(c.table(key, z))
    extra = {k: z.pop(k) for k in _ZONE_EXTRA if k in z}
    zone = sc._zone(c, key, z)  # name, present_kb, min_kb, free: the shared checks
    kb = {k: c.integer(f"{key}.{k}", extra.get(k, 0), 0, MAX_KB) for k in _ZONE_EXTRA}
    free_kb = sum(n << o for o, n in enumerate(zone.free)) * PAGE_KB
    used = free_kb + kb["file_kb"] + kb["dirty_kb"] + kb["kernel_kb"]
    if zone.present_kb and used > zone.present_kb:
        raise c.fail(f"{key}.present_kb", f"at least free + file_kb + dirty_kb + kernel_kb "
                     f"= {used} kB", zone.present_kb)
    return ZoneSpec(zone, kb["file_kb"], kb["dirty_kb"], kb["kernel_kb"])


def _process(c: sc._Check, key: str, p: Any, next_pid: int) -> ProcessSpec:
    p = c.table(key, p)
    c.keys(key, p, _PROCESS_KEYS)
    if "name" not in p:
        raise c.fail(f"{key}.name", "the process's name (its comm)", "nothing")
    name = _name(c, f"{key}.name", p["name"])
    tgid = c.integer(f"{key}.pid", p.get("pid", next_pid), 1, sc.PID_MAX)
    kthread = _bool(c, f"{key}.kthread", p.get("kthread", False))
    raw = p.get("thread", [{}])
    if not isinstance(raw, list) or not raw:
        raise c.fail(f"{key}.thread", "an array of tables ([[process.thread]]), at least one",
                     raw)
    threads: list[ThreadSpec] = []
    pid = tgid
    for j, t in enumerate(raw):
        th = _thread(c, f"{key}.thread[{j}]", t, name, pid, kthread)
        threads.append(th)
        pid = max(th.pids) + 1
    if threads[0].pids[0] != tgid:
        raise c.fail(f"{key}.thread[0].pid", f"the process's pid {tgid} first (the thread "
                     "group leader)", threads[0].pids[0])
    return ProcessSpec(
        name=name, tgid=tgid,
        ppid=c.integer(f"{key}.ppid", p.get("ppid", 2 if kthread else 1), 0, sc.PID_MAX),
        rss_kb=c.integer(f"{key}.rss_kb", p.get("rss_kb", 0), 0, MAX_KB),
        oom_score_adj=c.integer(f"{key}.oom_score_adj", p.get("oom_score_adj", 0), -1000, 1000),
        kthread=kthread, threads=tuple(threads))


def _thread(c: sc._Check, key: str, t: Any, pname: str, next_pid: int, kthread: bool) -> ThreadSpec:
    t = c.table(key, t)
    c.keys(key, t, _THREAD_KEYS)
    name = _name(c, f"{key}.name", t.get("name", pname))
    raw_pid = t.get("pid", next_pid)
    if isinstance(raw_pid, list):
        if not raw_pid:
            raise c.fail(f"{key}.pid", "a pid or a non-empty list of pids", raw_pid)
        if "count" in t and t["count"] != len(raw_pid):
            raise c.fail(f"{key}.count", f"{len(raw_pid)}, the length of pid", t["count"])
        pids = tuple(c.integer(f"{key}.pid[{j}]", x, 1, sc.PID_MAX) for j, x in enumerate(raw_pid))
        if len(set(pids)) != len(pids):
            raise c.fail(f"{key}.pid", "distinct pids", raw_pid)
    else:
        first = c.integer(f"{key}.pid", raw_pid, 1, sc.PID_MAX)
        count = c.integer(f"{key}.count", t.get("count", 1), 1, sc.MAX_TASKS)
        if first + count - 1 > sc.PID_MAX:
            raise c.fail(f"{key}.pid", f"a first pid of at most {sc.PID_MAX - count + 1}", first)
        pids = tuple(range(first, first + count))
    use = t.get("use", BUFFER)
    if use not in USES:
        raise c.fail(f"{key}.use", f"one of {', '.join(USES)}", use)
    if use == ANON and kthread:
        raise c.fail(f"{key}.use", "not anon in a kernel thread (it has no mm)", use)
    locks = t.get("locks", [])
    if not isinstance(locks, list) or not all(isinstance(x, str) and 0 < len(x) <= 64
                                               and x.isprintable() for x in locks) or len(locks) > 8:
        raise c.fail(f"{key}.locks", "a list of at most 8 lock names (1 to 64 characters), "
                     "e.g. [\"&mm->mmap_sem:read\", \"&inode->i_mutex\"]", locks)
    names = [split_lock(x)[0] for x in locks]
    if len(set(names)) != len(names):
        raise c.fail(f"{key}.locks", "distinct lock names", locks)
    return ThreadSpec(
        name=name, pids=pids,
        gfp=c.gfp(f"{key}.gfp", t.get("gfp", "GFP_KERNEL")),
        order=c.integer(f"{key}.order", t.get("order", 0), 0, sc.MAX_ORDER - 1),
        interval_s=c.seconds(f"{key}.interval_s", t.get("interval_s", 1.0)),
        burst=c.integer(f"{key}.burst", t.get("burst", 1), 1, 4096),
        use=use,
        hold_s=c.seconds(f"{key}.hold_s", t.get("hold_s", 0.01)),
        locks=tuple(locks),
        killable=_bool(c, f"{key}.killable", t.get("killable", False)),
        memalloc_noio=_bool(c, f"{key}.memalloc_noio", t.get("memalloc_noio", False)),
        start_s=c.seconds(f"{key}.start_s", t.get("start_s", 0)),
        idle=_bool(c, f"{key}.idle", t.get("idle", False)),
        writeback=_bool(c, f"{key}.writeback", t.get("writeback", False)),
        workqueue=_workqueue(c, f"{key}.workqueue", t, kthread),
    )


FLUSHER_WORK = "writeback wb_workfn (flush-8:0)"


def _workqueue(c: sc._Check, key: str, t: dict, kthread: bool) -> str:
    """``"WQ_NAME FUNCTION"`` (and an optional " (DESC)"): a kernel thread's."""
    if "workqueue" not in t:
        return FLUSHER_WORK if kthread and t.get("writeback") is True else ""
    v = t["workqueue"]
    if not kthread or not isinstance(v, str) or not v.isprintable() or not 0 < len(v) <= 64 \
            or len(v.split()) < 2:
        raise c.fail(key, "a kernel thread's work item: \"WORKQUEUE FUNCTION\" (printable, "
                     "at most 64 characters)", v)
    return v


# ---- loading ----


def loads(text: str, file: str = "<string>", default_name: str = "scenario") -> Workload:
    if len(text) > MAX_FILE_BYTES:
        raise ScenarioError(f"scenario {file}: too large: expected at most {MAX_FILE_BYTES} "
                            f"characters, got {len(text)}")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"scenario {file}: not valid TOML: {exc}") from None
    except RecursionError:
        raise ScenarioError(f"scenario {file}: not a scenario: nested too deeply") from None
    return parse(data, file, default_name)


def load_file(path: str | Path, option: str = "--scenario") -> Workload:
    """A scenario file, read with a bound (MAX_FILE_BYTES, regular files
    only): UsageError (from kmallocwd.inputs) if it cannot be read."""
    from kmallocwd.inputs import read_text

    text = read_text(str(path), option, MAX_FILE_BYTES)
    return loads(text, str(path), Path(path).stem)


def builtin_names() -> tuple[str, ...]:
    files = resources.files("kmallocwd").joinpath(sc.BUILTIN_DIR).iterdir()
    return tuple(sorted(f.name[:-5] for f in files if f.name.endswith(".toml")))


def builtin_text(name: str) -> str:
    return resources.files("kmallocwd").joinpath(sc.BUILTIN_DIR, f"{name}.toml").read_text(
        encoding="utf-8")


def load_builtin(name: str) -> Workload:
    return loads(builtin_text(name), f"{name} (built-in)", name)


def resolve(spec: str) -> Workload:
    """A built-in scenario's name, or the path of a scenario file."""
    if spec in builtin_names():
        return load_builtin(spec)
    p = Path(spec)
    if not spec or p.exists() or p.suffix == ".toml" or "/" in spec:
        return load_file(spec)
    raise ScenarioError(f"scenario {spec}: no built-in scenario or file of that name "
                        f"(built-ins: {', '.join(builtin_names())})")
