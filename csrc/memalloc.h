/*
 * memalloc.h - the seed's per-task struct memalloc_info, one per slot,
 * plus what the emulator needs around it: the torn-read witness, the
 * emulated jiffies clock and the knobs that widen the write section.
 */
#ifndef KMW_MEMALLOC_H
#define KMW_MEMALLOC_H

#include <stdint.h>
#include "barriers.h"

typedef unsigned int gfp_t;

/* Linux 4.4 (the seed's era) values, include/linux/gfp.h. */
#define ___GFP_DIRECT_RECLAIM	0x400000u
#define ___GFP_KSWAPD_RECLAIM	0x2000000u
#define __GFP_RECLAIM		(___GFP_DIRECT_RECLAIM | ___GFP_KSWAPD_RECLAIM)

#define KMW_CACHELINE		64

/*
 * The seed's fields, in the seed's order, then the emulator's.  One slot
 * is one cache line, so that slots of different tasks never share one.
 */
struct memalloc_info {
	/* For locking and progress monitoring. */
	unsigned int sequence;
	/* 0: no __GFP_RECLAIM allocation; 1: one; 2: nested. */
	unsigned char valid;
	/* For reducing stack traces (the watchdog writes it too). */
	unsigned char dumped;
	/* Started time in jiffies as of valid == 1. */
	unsigned long start;
	/* Requested order and gfp flags as of valid == 1. */
	unsigned int order;
	gfp_t gfp;
	/*
	 * Emulator only: memalloc_witness() of the values written by the
	 * write section that wrote this slot, stored inside that section.
	 */
	uint64_t witness;
	/* Emulator only: the v2-rwlock's lock word (-1 writer, >0 readers). */
	int rwlock;
} __attribute__((aligned(KMW_CACHELINE)));

_Static_assert(sizeof(struct memalloc_info) == KMW_CACHELINE,
	       "one slot per cache line");

/*
 * The torn-read witness: a 64-bit mix of the sequence a write section
 * ends with (so: of the section's generation) and of every field it
 * writes that the watchdog prints.  "dumped" is left out (the watchdog
 * writes it outside any section), and so is "valid" (the seed writes it
 * outside the section).  A snapshot whose fields all come from one section
 * always matches (no false positives, whatever the values); fields or
 * witness from two sections match only if their values coincide.
 */
static inline uint64_t memalloc_witness(unsigned int end_seq,
					unsigned long start,
					unsigned int order, gfp_t gfp)
{
	uint64_t h = (((uint64_t)end_seq << 32) | order) * 0x9e3779b97f4a7c15ULL;

	h ^= (uint64_t)start + 0x632be59bd9b4e019ULL;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= (h >> 31) ^ gfp;
	h *= 0x94d049bb133111ebULL;
	return h ^ (h >> 29);
}

/* 1 if the snapshot's fields were not all written by one write section. */
static inline int memalloc_torn(const struct memalloc_info *snap)
{
	/* An odd sequence was stored by a section's begin, not its end. */
	if (snap->sequence & 1)
		return 1;
	return snap->witness != memalloc_witness(snap->sequence, snap->start,
						 snap->order, snap->gfp);
}

/*
 * Knobs that widen the write section: spin hold_ns inside it, and call
 * sched_yield() inside it with probability preempt / 2^32; and one that
 * makes each allocation last alloc_ns between start and stop.  NULL (the
 * fast path, constant-folded away) means none of them.
 */
struct kmw_knobs {
	uint64_t hold_ns;
	uint32_t preempt;	/* probability scaled to 2^32 */
	uint64_t rng;		/* xorshift state, per writer thread */
	uint64_t alloc_ns;	/* time between start and stop (the allocation) */
	const int *stop;	/* set by kmw_writer_run(): the spins end on it */
};

void kmw_in_section(struct kmw_knobs *k);
void kmw_spin_ns(uint64_t ns, const int *stop);

/* Called between the section's field stores; free when k is NULL. */
#define KMW_IN_SECTION(k)	do { if (k) kmw_in_section(k); } while (0)

/* ---- emulated jiffies ---- */

struct kmw_clock {
	long hz;			/* ticks per second */
	unsigned long initial;		/* jiffies at t0 (the kernel's INITIAL_JIFFIES) */
	int64_t t0_ns;			/* CLOCK_MONOTONIC at jiffies == initial */
};

int64_t kmw_now_ns(void);
unsigned long kmw_jiffies(const struct kmw_clock *c);

/* The kernel's wrap-safe comparisons (include/linux/jiffies.h). */
#define time_after(a, b)	((long)((b) - (a)) < 0)
#define time_after_eq(a, b)	((long)((a) - (b)) >= 0)

#endif /* KMW_MEMALLOC_H */
