"""The seed's watchdog, emulated: tasks that allocate through their slot,
scenarios that say how they behave, and the kmallocwd() kernel thread that
watches them and prints what the seed prints.

Modules, one job each:

- ``carith``   unsigned long / long arithmetic of the kernel (jiffies wrap)
- ``gfpnames`` Linux 4.4 gfp flag names, for scenario files
- ``scenario`` the TOML scenario format: loading and checking it
- ``system``   the emulated machine: clock, slots, task list, halt
- ``tasks``    the tasks: worker threads running kernel-named functions
- ``memory``   the emulated zones behind show_mem()
- ``printk``   timestamped log lines, as text or JSON Lines
- ``stacks``   sched_show_task() from a worker thread's Python stack
- ``loop``     kmallocwd(), the watchdog kernel thread, step for step
- ``summary``  the end-of-run summary and the slot dump
- ``run``      one run: boot, wait, halt, summary
- ``scancost`` the watchdog's own cost at 10^4 and 10^6 slots
"""
