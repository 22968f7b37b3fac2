"""The C core's cffi declarations, sources and flags: data only, shared by
the setup-time builder (kmallocwd/_build.py) and the run-time compilation of
a user's protocol file (kmallocwd/protocols/usermod.py).  Importing it has
no side effect."""

# The C files every protocol module holds, besides its generated protocols.
COMMON_SOURCES = ["clock.c", "slots.c", "api.c"]
SOURCES = COMMON_SOURCES + ["watchdog.c", "reference.c", "replay.c"]
COMPILE_ARGS = ["-O2", "-std=gnu11", "-Wall", "-Wno-unused-function"]

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

struct kmw_writer { uint64_t hold_cycles; uint32_t preempt; uint64_t rng; uint64_t alloc_ns;
                    uint64_t stamp; uint32_t j; uint32_t q; uint32_t q0; };
enum kmw_read { KMW_ACCEPT = 0, KMW_REJECT_ODD = 1, KMW_REJECT_INVALID = 2, KMW_ABORTED = 3 };
enum kmw_mode { KMW_EMULATOR = 0, KMW_PROTOCOL = 1 };
enum kmw_outcome { KMW_O_CONSISTENT, KMW_O_TORN_MIXED, KMW_O_TORN_SEQ, KMW_O_TORN_INSIDE,
                   KMW_O_REJECTED_ODD, KMW_O_REJECTED_INVALID, KMW_O_ACCEPTED,
                   KMW_NR_OUTCOMES };
struct kmw_clock { long hz; unsigned long initial; int64_t t0_ns; };
struct kmw_request { gfp_t gfp; unsigned int order; };

struct kmw_tally {
    uint64_t outcome[7];
    uint64_t attempts;
    uint64_t overlaps;
    uint64_t retries;
    uint64_t stalling;
    uint64_t sink;
    uint64_t scans;
    uint64_t elapsed_ns;
    int64_t first_torn_ns;
    uint64_t first_torn_slot;
    int first_torn_outcome;
    struct memalloc_info first_torn;
    uint64_t first_torn_values[16];
    uint64_t first_torn_window[2];
};

#define KMW_CACHELINE ...
#define KMW_STAMP_SHIFT ...
#define KMW_MAX_REQUESTS ...

const char *kmw_build_name(void);
int kmw_nr_protocols(void);
const char *kmw_protocol_name(int proto);
struct memalloc_info *kmw_slots_alloc(size_t n);
void kmw_slots_free(struct memalloc_info *slots);
size_t kmw_slot_size(int proto);
void kmw_request_stop(int *stop);
int64_t kmw_now_ns(void);
unsigned long kmw_jiffies(const struct kmw_clock *c);
uint64_t kmw_tsc_per_us(void);

uint64_t kmw_writer_run(int proto, int mode, struct memalloc_info *slots,
                        const uint32_t *idx, uint32_t nidx,
                        const struct kmw_request *reqs, uint32_t nreqs,
                        uint64_t n, const struct kmw_clock *clock,
                        struct kmw_writer *w, const int *stop,
                        uint64_t *elapsed_ns);
void kmw_reader_scan(int proto, struct memalloc_info *slots, size_t nslots,
                     uint64_t passes, const struct kmw_request *reqs,
                     uint32_t nreqs, const int *stop, struct kmw_tally *t);
uint64_t kmw_bench_reads(int proto, struct memalloc_info *slots,
                         size_t nslots, uint64_t n, unsigned long expire,
                         const int *stop, struct kmw_tally *t,
                         uint64_t *elapsed_ns);
void kmw_start_memalloc_timer(int proto, struct memalloc_info *m,
                              gfp_t gfp_mask, unsigned int order,
                              unsigned long jiffies);
void kmw_stop_memalloc_timer(int proto, struct memalloc_info *m,
                             gfp_t gfp_mask);
int kmw_read_slot(int proto, struct memalloc_info *m,
                  struct memalloc_info *snap, uint64_t *retries,
                  const int *stop);
void kmw_tally_read(struct kmw_tally *t, int r, const struct memalloc_info *snap,
                    size_t slot);
int kmw_classify(const struct memalloc_info *snap,
                 const struct kmw_request *reqs, uint32_t nreqs);
uint64_t kmw_witness(unsigned int end_seq, unsigned long start,
                     unsigned int order, gfp_t gfp);
int kmw_is_stalling_task(int proto, struct memalloc_info *m,
                         unsigned long expire, struct memalloc_info *snap,
                         int *outcome);
"""

CDEF_WATCHDOG = """
long kmw_watchdog_due(const struct memalloc_info *slots, size_t n,
                      unsigned long timeout, unsigned long jiffies);
void kmw_watchdog_count(int proto, struct memalloc_info *slots, size_t n,
                        unsigned long expire, struct kmw_tally *t);

/* reference.h: the benchmarks' yardsticks */
uint64_t kmw_reference_run(struct memalloc_info *m, gfp_t gfp,
                           unsigned int order, uint64_t n,
                           const struct kmw_clock *clock, const int *stop,
                           uint64_t *elapsed_ns);
uint64_t kmw_copy_bandwidth(size_t bytes, uint64_t passes,
                            uint64_t *elapsed_ns);
struct kmw_step { int thread; int kind; int field; uint64_t value; };
int kmw_replay_thread(struct memalloc_info *m, const struct kmw_step *steps, uint32_t n,
                      int me, uint32_t *counter, uint64_t *loaded, const int *stop);
struct kmw_step2 { int thread; int kind; uint32_t offset; uint32_t width; uint64_t value;
                   int32_t index_step; uint32_t stride; };
int kmw_replay2_thread(unsigned char *buf, const struct kmw_step2 *steps, uint32_t n,
                       int me, uint32_t *counter, uint64_t *loaded, const int *stop);
"""
