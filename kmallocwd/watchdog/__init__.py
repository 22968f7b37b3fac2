"""The patch's watchdog, emulated: tasks that run a workload through a model
of Linux 4.4's allocator (their slot brackets the slow path), and the
kmallocwd() kernel thread that watches them and prints what the patch prints.

Modules, one job each:

- ``carith``   unsigned long / long arithmetic of the kernel (jiffies wrap)
- ``gfpnames`` Linux 4.4 gfp flag names, for scenario files
- ``scenario`` the checks of a scenario file's keys, ranges and zones
- ``workload`` the TOML scenario format: memory, processes, threads
- ``system``   the emulated machine: clock, slots, task list, locks, halt
- ``sched``    task states (bit masks), sleeping, mutexes
- ``pflags``   the task flags (PF_*) mm and oom share
- ``mm``       the page allocator: zones, watermarks, reclaim, show_mem()
- ``oom``      the OOM killer: selection, abort on TIF_MEMDIE, SIGKILL
- ``tasks``    the tasks: worker threads running kernel-named functions
- ``detectors`` khungtaskd, warn_alloc and PSI, for comparison
- ``report``   what one watchdog report contained, as records
- ``progress`` per-task progress between reports (livelock or slow)
- ``classify`` the run's classification, from the reports
- ``logparse``, ``logread`` a console log read back into reports (kmallocwd classify)
- ``printk``   timestamped log lines, as text or JSON Lines
- ``stacks``   sched_show_task() from a worker thread's Python stack
- ``loop``     kmallocwd(), the watchdog kernel thread, step for step
- ``summary``  the end-of-run summary and the slot dump
- ``run``      one run: boot, wait, halt, summary
- ``scancost`` the watchdog's own cost at 10^4 and 10^6 slots (python -m
  kmallocwd.cli.scancost)
"""
