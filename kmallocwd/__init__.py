"""kmallocwd: a real-concurrency emulator of the Linux memory allocation
watchdog (the 2015 kmallocwd patch) and of the lock-free seqcount it uses."""

__version__ = "0.1.0"
