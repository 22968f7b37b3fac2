/*
 * W-c11: the writer of Boehm's C11 seqlock ("Can Seqlocks Get Along With
 * Programming Language Memory Models?", 2012).  Every shared access is an
 * atomic, so a race detector has nothing to report.
 */
#ifndef KMW_WRITER_C11_H
#define KMW_WRITER_C11_H

#include "memalloc.h"

#define RELAXED_STORE(x, v)	__atomic_store_n(&(x), (v), __ATOMIC_RELAXED)
#define RELAXED_LOAD(x)		__atomic_load_n(&(x), __ATOMIC_RELAXED)

static inline __attribute__((always_inline)) void
wc11_start_memalloc_timer(struct memalloc_info *m, gfp_t gfp_mask,
			  unsigned int order, unsigned long jiffies,
			  struct kmw_knobs *k)
{
	if (!(gfp_mask & __GFP_RECLAIM))
		return;
	if (!RELAXED_LOAD(m->valid)) {
		/* Only this task writes its slot: a plain read-modify-write. */
		unsigned int seq = RELAXED_LOAD(m->sequence);

		RELAXED_STORE(m->sequence, seq + 1);
		/*
		 * RELEASE fence: the odd store above is ordered before the
		 * data stores below; pairs with the reader's ACQUIRE fence.
		 */
		atomic_thread_fence(memory_order_release);
		RELAXED_STORE(m->start, jiffies);
		KMW_IN_SECTION(k);
		RELAXED_STORE(m->gfp, gfp_mask);
		RELAXED_STORE(m->order, order);
		RELAXED_STORE(m->dumped, 0);
		RELAXED_STORE(m->witness,
			      memalloc_witness(seq + 2, jiffies, order, gfp_mask));
		/* RELEASE store: pairs with the reader's ACQUIRE load. */
		smp_store_release(&m->sequence, seq + 2);
	}
	RELAXED_STORE(m->valid, RELAXED_LOAD(m->valid) + 1);
}

static inline __attribute__((always_inline)) void
wc11_stop_memalloc_timer(struct memalloc_info *m, gfp_t gfp_mask)
{
	if (gfp_mask & __GFP_RECLAIM)
		RELAXED_STORE(m->valid, RELAXED_LOAD(m->valid) - 1);
}

#endif
