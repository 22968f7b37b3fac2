/*
 * proto.h - what every protocol's reader returns, and the spin helper the
 * looping readers share.  Each writer lives in its own header (writer_*.h),
 * the readers in readers.h; variants.h pairs them into variants.
 */
#ifndef KMW_PROTO_H
#define KMW_PROTO_H

#include <stdint.h>
#include "memalloc.h"

enum kmw_read {
	KMW_ACCEPT = 0,		/* the reader took the snapshot as valid */
	KMW_REJECT_ODD = 1,	/* refused: a write section was in progress */
	KMW_REJECT_INVALID = 2,	/* refused: valid == 0 (no allocation) */
	KMW_ABORTED = 3,	/* a stop request ended a spin or retry loop */
};

/* Per-read context: counts retries and spins, and carries the stop flag. */
struct kmw_rctx {
	uint64_t retries;
	const int *stop;
};

/*
 * One more pass of a looping reader (an odd sequence waited on, a lock
 * busy, or a changed sequence).  Returns 1 when a stop was requested, so
 * that no reader loop outlives a stop by more than ~1024 iterations.
 */
static inline int kmw_retry(struct kmw_rctx *c)
{
	c->retries++;
	cpu_relax();
	return (c->retries & 1023) == 0 && c->stop && READ_ONCE(*c->stop);
}

#endif /* KMW_PROTO_H */
