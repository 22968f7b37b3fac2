/*
 * kmallocwd.h - the C core's public API, the one cffi binds.
 * Nothing here keeps state of its own: every call is handed the slots,
 * the clock, the stop flag and the stats it works on.
 */
#ifndef KMW_KMALLOCWD_H
#define KMW_KMALLOCWD_H

#include <stddef.h>
#include <stdint.h>
#include "memalloc.h"
#include "proto.h"	/* enum kmw_read: what a reader returns */

/* The variants of protocols.md; the order is kmallocwd/protocols.py's. */
enum kmw_protocol {
	KMW_V2_RWLOCK,
	KMW_V3,
	KMW_V4_PARITY,
	KMW_SEQCOUNT,
	KMW_SEQCOUNT_ACQUIRE,
	KMW_C11,
	KMW_NO_WMB,
	KMW_NO_RMB,
	KMW_NONE,
	KMW_NR_PROTOCOLS
};

const char *kmw_protocol_name(int proto);

/* One gfp/order pair an emulated allocation asks for. */
struct kmw_request {
	gfp_t gfp;
	unsigned int order;
};

/* What one reader thread saw; the C loops only ever add to it. */
struct kmw_reader_stats {
	uint64_t consistent;
	uint64_t torn;
	uint64_t rejected_odd;
	uint64_t rejected_invalid;
	uint64_t retries;
	uint64_t scans;		/* complete passes over all slots */
	int64_t first_torn_ns;	/* CLOCK_MONOTONIC, 0 while none seen */
	uint64_t first_torn_slot;
	struct memalloc_info first_torn;
	uint64_t elapsed_ns;	/* time spent inside the C loop */
};

/* Slots: an array of n cache-line-aligned, zeroed slots (NULL: no memory). */
struct memalloc_info *kmw_slots_alloc(size_t n);
void kmw_slots_free(struct memalloc_info *slots);

/* The stop flag every loop polls. */
void kmw_request_stop(int *stop);

/*
 * Writer loop: n start/stop pairs, round-robin over the slots idx[0..nidx),
 * cycling through reqs[0..nreqs).  knobs may be NULL.  Returns the pairs
 * done (fewer than n after a stop request); *elapsed_ns gets the time.
 */
uint64_t kmw_writer_run(int proto, struct memalloc_info *slots,
			const uint32_t *idx, uint32_t nidx,
			const struct kmw_request *reqs, uint32_t nreqs,
			uint64_t n, const struct kmw_clock *clock,
			struct kmw_knobs *knobs, const int *stop,
			uint64_t *elapsed_ns);

/* Reader loop: `passes` scans of slots[0..nslots), adding to *st. */
void kmw_reader_scan(int proto, struct memalloc_info *slots, size_t nslots,
		     uint64_t passes, const int *stop,
		     struct kmw_reader_stats *st);

/* One-shot entry points, for Python-driven tasks and tests. */
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

/*
 * The benchmarks' read loop (bench.c): n reads round-robin over
 * slots[0..nslots) with the protocol's reader and the seed's
 * time_after_eq(expire, start) check, and no torn-read check.  Returns the
 * reads done (fewer than n after a stop); *elapsed_ns gets the time.
 */
struct kmw_bench_counts {
	uint64_t accepted;
	uint64_t rejected_odd;
	uint64_t rejected_invalid;
	uint64_t stalling;	/* accepted and time_after_eq(expire, start) */
	uint64_t retries;
	uint64_t sink;		/* XOR of the accepted snapshots' fields */
};

uint64_t kmw_bench_reads(int proto, struct memalloc_info *slots,
			 size_t nslots, uint64_t n, unsigned long expire,
			 const int *stop, struct kmw_bench_counts *counts,
			 uint64_t *elapsed_ns);

/* The watchdog's scans over n slots (watchdog.c): its own cost at scale. */
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

#endif
