/*
 * kmallocwd.h - the C core's public API, the one cffi binds.
 * Nothing here keeps state of its own but the global locks (locks.h): every
 * call is handed the slots, the clock, the stop flag and the tally it works
 * on.  Protocols are numbered 0 .. kmw_nr_protocols() - 1 in the order of
 * the generated table; look them up by kmw_protocol_name().
 */
#ifndef KMW_KMALLOCWD_H
#define KMW_KMALLOCWD_H

#include <stddef.h>
#include <stdint.h>
#include "memalloc.h"
#include "proto.h"	/* enum kmw_read: what a reader returns */

/* The most fields a format-2 protocol file declares (format2.py's MAX_FIELDS). */
#define KMW_MAX_FIELDS		16

enum kmw_mode {
	KMW_EMULATOR = 0,	/* witness, stamps, classification, overlaps */
	KMW_PROTOCOL = 1,	/* the protocol's own operations only */
};

/* What the reads of one loop saw; the loops only ever add to it. */
struct kmw_tally {
	uint64_t outcome[KMW_NR_OUTCOMES];	/* enum kmw_outcome */
	uint64_t attempts;	/* reads made */
	uint64_t overlaps;	/* reads a write section overlapped */
	uint64_t retries;	/* the readers' extra passes and lock waits */
	uint64_t stalling;	/* accepted and time_after_eq(expire, start) */
	uint64_t sink;		/* XOR of the accepted fields (bench) */
	uint64_t scans;		/* complete passes over all slots */
	uint64_t elapsed_ns;	/* time spent inside the C loop */
	int64_t first_torn_ns;	/* CLOCK_MONOTONIC, 0 while none seen */
	uint64_t first_torn_slot;
	int first_torn_outcome;
	struct memalloc_info first_torn;
	/* format 2: the first torn snapshot's fields, in the struct's order,
	 * and the sections its read could see (loops2.h) */
	uint64_t first_torn_values[KMW_MAX_FIELDS];
	uint64_t first_torn_window[2];
};

const char *kmw_build_name(void);
int kmw_nr_protocols(void);
const char *kmw_protocol_name(int proto);

/* Slots: n cache-line-aligned slots, zeroed but for the initial witness. */
struct memalloc_info *kmw_slots_alloc(size_t n);
/*
 * The bytes of one slot of a protocol: sizeof(struct memalloc_info), or a
 * format-2 protocol's own struct (whole cache lines); 0 for no protocol.
 */
size_t kmw_slot_size(int proto);
void kmw_slots_free(struct memalloc_info *slots);

/* The stop flag every loop polls. */
void kmw_request_stop(int *stop);

/*
 * Writer loop: n start/stop pairs, round-robin over the slots
 * idx[0..nidx), with the requests reqs[0..nreqs) (nreqs <= 256).  w holds
 * the thread's knobs and its state across calls.  Returns the pairs done
 * (fewer than n after a stop request); *elapsed_ns gets the time.
 */
uint64_t kmw_writer_run(int proto, int mode, struct memalloc_info *slots,
			const uint32_t *idx, uint32_t nidx,
			const struct kmw_request *reqs, uint32_t nreqs,
			uint64_t n, const struct kmw_clock *clock,
			struct kmw_writer *w, const int *stop,
			uint64_t *elapsed_ns);

/*
 * The watchdog's scan, emulator mode: `passes` scans of slots[0..nslots),
 * classifying each accepted snapshot against the requests the writers make.
 */
void kmw_reader_scan(int proto, struct memalloc_info *slots, size_t nslots,
		     uint64_t passes, const struct kmw_request *reqs,
		     uint32_t nreqs, const int *stop, struct kmw_tally *t);

/*
 * The benchmarks' read loop, protocol mode: n reads round-robin over
 * slots[0..nslots) with the patch's time_after_eq(expire, start) check and
 * nothing else.  Returns the reads done; *elapsed_ns gets the time.
 */
uint64_t kmw_bench_reads(int proto, struct memalloc_info *slots,
			 size_t nslots, uint64_t n, unsigned long expire,
			 const int *stop, struct kmw_tally *t,
			 uint64_t *elapsed_ns);

/* One-shot entry points (emulator mode), for Python-driven tasks and tests. */
void kmw_start_memalloc_timer(int proto, struct memalloc_info *m,
			      gfp_t gfp_mask, unsigned int order,
			      unsigned long jiffies);
void kmw_stop_memalloc_timer(int proto, struct memalloc_info *m,
			     gfp_t gfp_mask);
int kmw_read_slot(int proto, struct memalloc_info *m,
		  struct memalloc_info *snap, uint64_t *retries,
		  const int *stop);
/* Add one read's outcome (enum kmw_read) to a tally, as the C loops do. */
void kmw_tally_read(struct kmw_tally *t, int r, const struct memalloc_info *snap,
		    size_t slot);
int kmw_classify(const struct memalloc_info *snap,
		 const struct kmw_request *reqs, uint32_t nreqs);
uint64_t kmw_witness(unsigned int end_seq, unsigned long start,
		     unsigned int order, gfp_t gfp);
int kmw_is_stalling_task(int proto, struct memalloc_info *m,
			 unsigned long expire, struct memalloc_info *snap,
			 int *outcome);

/* The watchdog's scans over n slots (watchdog.c): its own cost at scale. */
long kmw_watchdog_due(const struct memalloc_info *slots, size_t n,
		      unsigned long timeout, unsigned long jiffies);
void kmw_watchdog_count(int proto, struct memalloc_info *slots, size_t n,
			unsigned long expire, struct kmw_tally *t);

/* TSC ticks per microsecond (0 off x86-64), for --hold-ns. */
uint64_t kmw_tsc_per_us(void);

#endif
