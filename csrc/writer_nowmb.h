/*
 * W-nowmb: W-seq with both smp_wmb() removed, compiler barriers included.
 * Nothing now keeps the compiler from merging the two plain increments of
 * m->sequence into one "+= 2" (GCC 12 -O2 does, and stores it between the
 * start and order stores: the odd window is gone), and nothing keeps a
 * weak CPU from making the field stores visible outside the odd window.
 */
#ifndef KMW_WRITER_NOWMB_H
#define KMW_WRITER_NOWMB_H

#include "memalloc.h"

static inline __attribute__((always_inline)) void
wnowmb_start_memalloc_timer(struct memalloc_info *m, gfp_t gfp_mask,
			    unsigned int order, unsigned long jiffies,
			    struct kmw_knobs *k)
{
	if (!(gfp_mask & __GFP_RECLAIM))
		return;
	if (!m->valid) {
		m->sequence++;
		/* smp_wmb() removed */
		m->start = jiffies;
		KMW_IN_SECTION(k);
		m->gfp = gfp_mask;
		m->order = order;
		m->dumped = 0;
		m->witness = memalloc_witness(m->sequence + 1, jiffies, order,
					      gfp_mask);
		/* smp_wmb() removed */
		m->sequence++;
	}
	m->valid++;
}

#define wnowmb_stop_memalloc_timer wseq_stop_memalloc_timer

#endif
