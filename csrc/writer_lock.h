/*
 * W-lock: the v2 patch's way, the same field updates under the write side
 * of a reader-writer spinlock (one lock word per slot, in the slot).
 * valid stays outside the lock, as the seed keeps it.
 */
#ifndef KMW_WRITER_LOCK_H
#define KMW_WRITER_LOCK_H

#include "proto.h"

static inline void kmw_write_lock(int *lock)
{
	for (;;) {
		int unlocked = 0;

		/* ACQUIRE: the section's stores stay after taking the lock. */
		if (__atomic_compare_exchange_n(lock, &unlocked, -1, 0,
						__ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED))
			return;
		while (READ_ONCE(*lock) != 0)
			cpu_relax();
	}
}

static inline void kmw_write_unlock(int *lock)
{
	/* RELEASE: pairs with the ACQUIRE in kmw_read_lock(). */
	smp_store_release(lock, 0);
}

/* Returns 1 if a stop request ended the wait. */
static inline int kmw_read_lock(int *lock, struct kmw_rctx *c)
{
	for (;;) {
		int v = READ_ONCE(*lock);

		/* ACQUIRE: pairs with the RELEASE in kmw_write_unlock(). */
		if (v >= 0 && __atomic_compare_exchange_n(lock, &v, v + 1, 0,
							  __ATOMIC_ACQUIRE,
							  __ATOMIC_RELAXED))
			return 0;
		if (kmw_retry(c))
			return 1;
	}
}

static inline void kmw_read_unlock(int *lock)
{
	/* RELEASE: the copy's loads stay before the unlock. */
	__atomic_fetch_sub(lock, 1, __ATOMIC_RELEASE);
}

static inline __attribute__((always_inline)) void
wlock_start_memalloc_timer(struct memalloc_info *m, gfp_t gfp_mask,
			   unsigned int order, unsigned long jiffies,
			   struct kmw_knobs *k)
{
	if (!(gfp_mask & __GFP_RECLAIM))
		return;
	if (!m->valid) {
		kmw_write_lock(&m->rwlock);
		m->sequence++;
		m->start = jiffies;
		KMW_IN_SECTION(k);
		m->gfp = gfp_mask;
		m->order = order;
		m->dumped = 0;
		m->witness = memalloc_witness(m->sequence + 1, jiffies, order,
					      gfp_mask);
		m->sequence++;
		kmw_write_unlock(&m->rwlock);
	}
	m->valid++;
}

#define wlock_stop_memalloc_timer wseq_stop_memalloc_timer

#endif
