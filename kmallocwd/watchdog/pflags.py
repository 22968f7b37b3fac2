"""The task flags the world uses (include/linux/sched.h, 4.4): a leaf, so
the allocator (mm) and the OOM killer (oom) share them without importing
each other."""

PF_EXITING = 0x00000004  # getting shut down
PF_MEMALLOC = 0x00000800  # allocating memory (reclaim may not recurse)
PF_MEMALLOC_NOIO = 0x00080000  # allocating memory without IO involved
PF_KTHREAD = 0x00200000  # a kernel thread
