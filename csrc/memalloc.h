/*
 * memalloc.h - the patch's per-task struct memalloc_info, one per slot,
 * plus what the emulator needs around it: the torn-read witness, the
 * emulated jiffies clock and the knobs that widen the write section.
 */
#ifndef KMW_MEMALLOC_H
#define KMW_MEMALLOC_H

#include <stdint.h>
#include "barriers.h"

typedef unsigned int gfp_t;

/* Linux 4.4 (the patch's era) values, include/linux/gfp.h. */
#define ___GFP_DIRECT_RECLAIM	0x400000u
#define ___GFP_KSWAPD_RECLAIM	0x2000000u
#define __GFP_RECLAIM		(___GFP_DIRECT_RECLAIM | ___GFP_KSWAPD_RECLAIM)

#define KMW_CACHELINE		64

/*
 * The patch's fields, in the patch's order, then the emulator's.  One slot
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
	/* Emulator only: the slot's own lock word (locks.h), for protocols
	 * that lock(slot). */
	int rwlock;
} __attribute__((aligned(KMW_CACHELINE)));

_Static_assert(sizeof(struct memalloc_info) == KMW_CACHELINE,
	       "one slot per cache line");

/*
 * The torn-read witness: a 64-bit mix of the sequence a write section
 * ends with (so: of the section's generation) and of every field it
 * writes that the watchdog prints.  "dumped" is left out (the watchdog
 * writes it outside any section), and so is "valid" (the patch writes it
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

/*
 * What a snapshot is (kmallocwd/classify.py is the Python twin, and
 * docs/protocols.md defines it).  In `kmallocwd stress` every write section
 * stores values no earlier section of its slot stored: start is a stamp
 * whose low KMW_STAMP_SHIFT bits index the request (gfp, order) it made.
 */
enum kmw_outcome {
	KMW_O_CONSISTENT,	/* every field from one write section */
	KMW_O_TORN_MIXED,	/* data fields from two or more sections */
	KMW_O_TORN_SEQ,		/* data from one section, sequence/witness from another */
	KMW_O_TORN_INSIDE,	/* odd sequence: taken inside a section, mixed */
	KMW_O_REJECTED_ODD,	/* the reader refused: a section was in progress */
	KMW_O_REJECTED_INVALID,	/* the reader refused: valid == 0 */
	KMW_O_ACCEPTED,		/* accepted, not classified (protocol mode) */
	KMW_NR_OUTCOMES
};

#define KMW_STAMP_SHIFT		8
#define KMW_MAX_REQUESTS	(1u << KMW_STAMP_SHIFT)

/* One gfp/order pair an emulated allocation asks for. */
struct kmw_request {
	gfp_t gfp;
	unsigned int order;
};

static inline int memalloc_classify(const struct memalloc_info *snap,
				    const struct kmw_request *reqs,
				    uint32_t nreqs)
{
	unsigned int end = snap->sequence + (snap->sequence & 1);
	uint32_t q;

	/* Inside a section after all its stores: still one section's. */
	if (snap->witness == memalloc_witness(end, snap->start, snap->order,
					      snap->gfp))
		return KMW_O_CONSISTENT;
	if (snap->sequence & 1)
		return KMW_O_TORN_INSIDE;
	if (!snap->start && !snap->gfp && !snap->order)
		return KMW_O_TORN_SEQ;	/* the slot's initial contents */
	q = (uint32_t)(snap->start & (KMW_MAX_REQUESTS - 1));
	if (reqs && q < nreqs && reqs[q].gfp == snap->gfp &&
	    reqs[q].order == snap->order)
		return KMW_O_TORN_SEQ;
	return KMW_O_TORN_MIXED;
}

static inline int kmw_outcome_torn(int o)
{
	return o == KMW_O_TORN_MIXED || o == KMW_O_TORN_SEQ ||
	       o == KMW_O_TORN_INSIDE;
}

/*
 * One writer thread's knobs and state.  The knobs widen the write section
 * (hold_cycles of TSC spin inside it; sched_yield() inside it with
 * probability preempt / 2^32) or make each allocation last alloc_ns between
 * start and stop.
 * The state carries the round-robin position and the next section's stamp
 * across calls into the loop.
 */
struct kmw_writer {
	uint64_t hold_cycles;
	uint32_t preempt;	/* probability scaled to 2^32 */
	uint64_t rng;		/* xorshift state */
	uint64_t alloc_ns;
	uint64_t stamp;		/* the next section's stamp (emulator mode) */
	uint32_t j;		/* next index into this writer's slots */
	uint32_t q;		/* request of slot idx[j] */
	uint32_t q0;		/* request of slot idx[0] this round */
};

void kmw_spin_ns(uint64_t ns, const int *stop);
int kmw_preempt_draw(struct kmw_writer *w);
void kmw_yield(void);
uint64_t kmw_tsc_per_us(void);

/* A function compiled on its own: not inlined, cloned or folded into another. */
#if defined(__GNUC__) && !defined(__clang__)
#define KMW_NOIPA	__attribute__((noipa))
#else
#define KMW_NOIPA	__attribute__((noinline))
#endif

/* What the knobs do in the next write section, drawn before it starts. */
struct kmw_pause {
	uint64_t cycles;	/* --hold-ns: TSC cycles to spin */
	uint64_t yield;		/* --preempt: sched_yield() (drawn) */
};

/* Whether a writer loop build has the knobs (a compile-time constant). */
enum {
	KMW_NO_KNOBS = 0,	/* protocol mode: what the kernel runs */
	KMW_KNOBS = 1,		/* emulator mode: tested at run time */
};

/*
 * The knobs inside a write section; nothing when !knobs.  The generator
 * puts it next to a compiler barrier the protocol already has in the
 * section (nowhere if it has none), and on x86-64 it is one volatile asm with register
 * operands only, no "memory" clobber and no branch the compiler sees (the
 * yield is a raw sched_yield syscall, which touches no user memory), so
 * that the protocol's accesses compile in the same order with and without
 * it: -DKMW_NO_KNOB_HOOK compiles it out, and the tests compare the two
 * object codes.  Elsewhere the knobs are calls.
 */
static inline __attribute__((always_inline)) void
kmw_in_section(const struct kmw_pause k, const int knobs)
{
#ifndef KMW_NO_KNOB_HOOK
	if (!knobs)
		return;
#if defined(__x86_64__)
	{
		uint64_t t0, nr = 24;	/* __NR_sched_yield */

		__asm__ __volatile__(
			"test %[y], %[y]\n\t"
			"jz 1f\n\t"
			"syscall\n"
			"1:\n\t"
			"test %[c], %[c]\n\t"
			"jz 3f\n\t"
			"rdtsc\n\t"
			"shl $32, %%rdx\n\t"
			"or %%rdx, %%rax\n\t"
			"mov %%rax, %[t0]\n"
			"2:\n\t"
			"pause\n\t"
			"rdtsc\n\t"
			"shl $32, %%rdx\n\t"
			"or %%rdx, %%rax\n\t"
			"sub %[t0], %%rax\n\t"
			"cmp %[c], %%rax\n\t"
			"jb 2b\n"
			"3:"
			: [t0] "=&r"(t0), "+a"(nr)
			: [y] "r"(k.yield), [c] "r"(k.cycles)
			: "rdx", "rcx", "r11", "cc");
	}
#else
	if (k.yield)
		kmw_yield();
	if (k.cycles)
		kmw_spin_ns(k.cycles, NULL);
#endif
#else
	(void)k;
	(void)knobs;
#endif
}

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
