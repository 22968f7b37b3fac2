/*
 * readers.h - one function per reader of protocols.md.  Each reads one
 * slot into *snap and says whether it accepts it.  The caller (the
 * watchdog's scan) then checks the snapshot's witness.
 *
 * The plain loads of R-v3, R-v4-parity, R-seqcount and R-none race with
 * the writer's plain stores, as in the kernel: that is the point.
 */
#ifndef KMW_READERS_H
#define KMW_READERS_H

#include "proto.h"
#include "writer_lock.h"
#include "writer_c11.h"

/* Plain field-by-field copy, in the struct's order. */
#define COPY_FIELDS(snap, m) do {			\
	(snap)->valid = (m)->valid;			\
	(snap)->dumped = (m)->dumped;			\
	(snap)->start = (m)->start;			\
	(snap)->order = (m)->order;			\
	(snap)->gfp = (m)->gfp;				\
	(snap)->witness = (m)->witness;			\
} while (0)

/* R-v3: the seed's is_stalling_task(), verbatim but for the time check. */
static inline __attribute__((always_inline)) int
rv3_read(struct memalloc_info *m, struct memalloc_info *snap,
	 struct kmw_rctx *c)
{
	unsigned int seq;

	(void)c;
	if (!m->valid)
		return KMW_REJECT_INVALID;
	/*
	 * If start_memalloc_timer() is updating "struct memalloc_info" now,
	 * we can ignore it because timeout jiffies cannot be expired as soon
	 * as updating it completes.
	 */
	seq = READ_ONCE(m->sequence);
	smp_rmb();	/* pairs with the writer's second smp_wmb() */
	if (seq & 1)
		return KMW_REJECT_ODD;
	*snap = *m;	/* plain struct copy, no barrier after it: the bug */
	/*
	 * If start_memalloc_timer() started updating it while we read it,
	 * we can ignore it for the same reason.  (Parity only: a whole
	 * section may have run during the copy.)
	 */
	if (!snap->valid)
		return KMW_REJECT_INVALID;
	if (snap->sequence & 1)
		return KMW_REJECT_ODD;
	return KMW_ACCEPT;
}

/* R-v4-parity: barriers around a field-by-field copy, parity re-check. */
static inline __attribute__((always_inline)) int
rv4_read(struct memalloc_info *m, struct memalloc_info *snap,
	 struct kmw_rctx *c)
{
	unsigned int seq;

	(void)c;
	if (!m->valid)
		return KMW_REJECT_INVALID;
	seq = READ_ONCE(m->sequence);
	if (seq & 1)
		return KMW_REJECT_ODD;
	smp_rmb();	/* pairs with the writer's second smp_wmb() */
	snap->sequence = seq;
	COPY_FIELDS(snap, m);
	smp_rmb();	/* pairs with the writer's first smp_wmb() */
	if (READ_ONCE(m->sequence) & 1)	/* parity only, not equality */
		return KMW_REJECT_ODD;
	if (!snap->valid)
		return KMW_REJECT_INVALID;
	return KMW_ACCEPT;
}

/*
 * R-seqcount: read_seqcount_begin() / read_seqcount_retry().  With
 * rmb == 0 it is R-normb, the same loop with both smp_rmb() removed.
 */
static inline __attribute__((always_inline)) int
rseqcount_read_x(struct memalloc_info *m, struct memalloc_info *snap,
		 struct kmw_rctx *c, const int rmb, const int acquire)
{
	unsigned int seq;

	if (!READ_ONCE(m->valid))
		return KMW_REJECT_INVALID;
	do {
		for (;;) {
			seq = acquire ? smp_load_acquire(&m->sequence)
				      : READ_ONCE(m->sequence);
			if (!(seq & 1))
				break;
			if (kmw_retry(c))
				return KMW_ABORTED;
		}
		if (rmb && !acquire)
			smp_rmb();	/* pairs with the writer's second smp_wmb() */
		snap->sequence = seq;
		COPY_FIELDS(snap, m);
		if (rmb)
			smp_rmb();	/* pairs with the writer's first smp_wmb() */
		if (READ_ONCE(m->sequence) == seq)	/* equality, not parity */
			break;
		if (kmw_retry(c))
			return KMW_ABORTED;
	} while (1);
	if (!snap->valid)
		return KMW_REJECT_INVALID;
	return KMW_ACCEPT;
}

#define rseqcount_read(m, s, c)	rseqcount_read_x(m, s, c, 1, 0)
#define racquire_read(m, s, c)	rseqcount_read_x(m, s, c, 1, 1)
#define rnormb_read(m, s, c)	rseqcount_read_x(m, s, c, 0, 0)

/* R-c11: Boehm's reader, every access atomic. */
static inline __attribute__((always_inline)) int
rc11_read(struct memalloc_info *m, struct memalloc_info *snap,
	  struct kmw_rctx *c)
{
	unsigned int seq0, seq1;

	if (!RELAXED_LOAD(m->valid))
		return KMW_REJECT_INVALID;
	for (;;) {
		/* ACQUIRE load: pairs with the writer's RELEASE store. */
		seq0 = __atomic_load_n(&m->sequence, __ATOMIC_ACQUIRE);
		snap->valid = RELAXED_LOAD(m->valid);
		snap->dumped = RELAXED_LOAD(m->dumped);
		snap->start = RELAXED_LOAD(m->start);
		snap->order = RELAXED_LOAD(m->order);
		snap->gfp = RELAXED_LOAD(m->gfp);
		snap->witness = RELAXED_LOAD(m->witness);
		/* ACQUIRE fence: pairs with the writer's RELEASE fence. */
		atomic_thread_fence(memory_order_acquire);
		seq1 = RELAXED_LOAD(m->sequence);
		if (seq0 == seq1 && !(seq0 & 1))
			break;
		if (kmw_retry(c))
			return KMW_ABORTED;
	}
	snap->sequence = seq0;
	if (!snap->valid)
		return KMW_REJECT_INVALID;
	return KMW_ACCEPT;
}

/* R-lock: the v2 reader, a copy under the read side of the slot's lock. */
static inline __attribute__((always_inline)) int
rlock_read(struct memalloc_info *m, struct memalloc_info *snap,
	   struct kmw_rctx *c)
{
	if (!m->valid)
		return KMW_REJECT_INVALID;
	if (kmw_read_lock(&m->rwlock, c))
		return KMW_ABORTED;
	snap->sequence = m->sequence;
	COPY_FIELDS(snap, m);
	kmw_read_unlock(&m->rwlock);
	if (!snap->valid)
		return KMW_REJECT_INVALID;
	return KMW_ACCEPT;
}

/* R-none: the control, a plain copy and no sequence check at all. */
static inline __attribute__((always_inline)) int
rnone_read(struct memalloc_info *m, struct memalloc_info *snap,
	   struct kmw_rctx *c)
{
	(void)c;
	*snap = *m;
	if (!snap->valid)
		return KMW_REJECT_INVALID;
	return KMW_ACCEPT;
}

#endif
