/*
 * W-seq: the seed's start_memalloc_timer() / stop_memalloc_timer(), which
 * is also the kernel's raw_write_seqcount_begin() / _end().  Used by v3,
 * v4-parity, seqcount, seqcount-acquire, no-rmb and none.
 */
#ifndef KMW_WRITER_SEQ_H
#define KMW_WRITER_SEQ_H

#include "memalloc.h"

static inline __attribute__((always_inline)) void
wseq_start_memalloc_timer(struct memalloc_info *m, gfp_t gfp_mask,
			  unsigned int order, unsigned long jiffies,
			  struct kmw_knobs *k)
{
	/* We don't check for stalls for !__GFP_RECLAIM allocations. */
	if (!(gfp_mask & __GFP_RECLAIM))
		return;
	/* We don't check for stalls for nested __GFP_RECLAIM allocations */
	if (!m->valid) {
		m->sequence++;
		smp_wmb(); /* Block is_stalling_task(): pairs with its smp_rmb(). */
		m->start = jiffies;
		KMW_IN_SECTION(k);
		m->gfp = gfp_mask;
		m->order = order;
		m->dumped = 0;
		m->witness = memalloc_witness(m->sequence + 1, jiffies, order,
					      gfp_mask);
		smp_wmb(); /* Unblock is_stalling_task(): pairs with its smp_rmb(). */
		m->sequence++;
	}
	m->valid++;
}

static inline __attribute__((always_inline)) void
wseq_stop_memalloc_timer(struct memalloc_info *m, gfp_t gfp_mask)
{
	if (gfp_mask & __GFP_RECLAIM)
		m->valid--;
}

#endif
