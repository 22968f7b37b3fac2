"""cffi (API mode) builder for the C core: ``kmallocwd._kmallocwd``.

setup.py points ``cffi_modules`` here; ``make`` rebuilds it whenever a file
in ``csrc/`` changes.
"""

from pathlib import Path

from cffi import FFI

ROOT = Path(__file__).resolve().parent.parent
CSRC = ROOT / "csrc"
SOURCES = ["clock.c", "slots.c", "protocols.c", "bench.c", "watchdog.c", "replay.c"]

CDEF = """
typedef unsigned int gfp_t;

struct memalloc_info {
    unsigned int sequence;
    unsigned char valid;
    unsigned char dumped;
    unsigned long start;
    unsigned int order;
    gfp_t gfp;
    uint64_t witness;
    int rwlock;
    ...;
};

struct kmw_knobs { uint64_t hold_ns; uint32_t preempt; uint64_t rng; uint64_t alloc_ns;
                   const int *stop; };
enum kmw_read { KMW_ACCEPT = 0, KMW_REJECT_ODD = 1, KMW_REJECT_INVALID = 2, KMW_ABORTED = 3 };
struct kmw_clock { long hz; unsigned long initial; int64_t t0_ns; };
struct kmw_request { gfp_t gfp; unsigned int order; };

struct kmw_reader_stats {
    uint64_t consistent;
    uint64_t torn;
    uint64_t rejected_odd;
    uint64_t rejected_invalid;
    uint64_t retries;
    uint64_t scans;
    int64_t first_torn_ns;
    uint64_t first_torn_slot;
    struct memalloc_info first_torn;
    uint64_t elapsed_ns;
};

#define KMW_NR_PROTOCOLS ...
#define KMW_CACHELINE ...

const char *kmw_protocol_name(int proto);
struct memalloc_info *kmw_slots_alloc(size_t n);
void kmw_slots_free(struct memalloc_info *slots);
void kmw_request_stop(int *stop);
int64_t kmw_now_ns(void);
unsigned long kmw_jiffies(const struct kmw_clock *c);

uint64_t kmw_writer_run(int proto, struct memalloc_info *slots,
                        const uint32_t *idx, uint32_t nidx,
                        const struct kmw_request *reqs, uint32_t nreqs,
                        uint64_t n, const struct kmw_clock *clock,
                        struct kmw_knobs *knobs, const int *stop,
                        uint64_t *elapsed_ns);
void kmw_reader_scan(int proto, struct memalloc_info *slots, size_t nslots,
                     uint64_t passes, const int *stop,
                     struct kmw_reader_stats *st);
void kmw_start_memalloc_timer(int proto, struct memalloc_info *m,
                              gfp_t gfp_mask, unsigned int order,
                              unsigned long jiffies);
void kmw_stop_memalloc_timer(int proto, struct memalloc_info *m,
                             gfp_t gfp_mask);
int kmw_read_slot(int proto, struct memalloc_info *m,
                  struct memalloc_info *snap, uint64_t *retries,
                  const int *stop);
int kmw_snapshot_torn(const struct memalloc_info *snap);
uint64_t kmw_witness(unsigned int end_seq, unsigned long start,
                     unsigned int order, gfp_t gfp);
int kmw_is_stalling_task(int proto, struct memalloc_info *m,
                         unsigned long expire, struct memalloc_info *snap,
                         int *outcome);

struct kmw_bench_counts {
    uint64_t accepted;
    uint64_t rejected_odd;
    uint64_t rejected_invalid;
    uint64_t stalling;
    uint64_t retries;
    uint64_t sink;
};
uint64_t kmw_bench_reads(int proto, struct memalloc_info *slots,
                         size_t nslots, uint64_t n, unsigned long expire,
                         const int *stop, struct kmw_bench_counts *counts,
                         uint64_t *elapsed_ns);
struct kmw_watchdog_scan {
    uint64_t stalling;
    uint64_t accepted;
    uint64_t torn;
    uint64_t rejected_odd;
    uint64_t rejected_invalid;
    uint64_t elapsed_ns;
};
long kmw_watchdog_due(const struct memalloc_info *slots, size_t n,
                      unsigned long timeout, unsigned long jiffies);
void kmw_watchdog_count(int proto, struct memalloc_info *slots, size_t n,
                        unsigned long expire, struct kmw_watchdog_scan *r);
struct kmw_step { int thread; int kind; int field; uint64_t value; };
int kmw_replay_thread(struct memalloc_info *m, const struct kmw_step *steps, uint32_t n,
                      int me, uint32_t *counter, uint64_t *loaded, const int *stop);
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "kmallocwd._kmallocwd",
    '#include "kmallocwd.h"\n#include "replay.h"',
    sources=[str((CSRC / s).relative_to(ROOT)) for s in SOURCES],
    include_dirs=[str(CSRC.relative_to(ROOT))],
    extra_compile_args=["-O2", "-std=gnu11", "-Wall", "-Wno-unused-function"],
    depends=[str(p.relative_to(ROOT)) for p in sorted(CSRC.glob("*.h"))],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
