/*
 * proto.h - what every protocol's reader returns, and the spin helper the
 * looping readers share.  The writers and readers themselves are generated
 * from the protocol files (kmallocwd/protocols/NAME.toml) by
 * kmallocwd/protocols/cgen.py.
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

/*
 * Per-read context: counts retries and spins, and carries the stop flag.
 * `evidence` counts the retries that say a write section of this very slot
 * overlapped the read (a changed or odd sequence, the slot's own lock
 * busy), not a wait on a global lock that another slot's section holds.
 */
struct kmw_rctx {
	uint64_t retries;
	const int *stop;
	uint64_t evidence;
};

/* Returns 1 when a stop was requested (checked every 1024 passes). */
static inline int kmw_spin_pass(struct kmw_rctx *c)
{
	c->retries++;
	cpu_relax();
	return (c->retries & 1023) == 0 && c->stop && READ_ONCE(*c->stop);
}

/*
 * One more pass of a looping reader after an odd or changed sequence.
 * Returns 1 when a stop was requested, so that no reader loop outlives a
 * stop by more than ~1024 iterations.
 */
static inline int kmw_retry(struct kmw_rctx *c)
{
	c->evidence++;
	return kmw_spin_pass(c);
}

#endif /* KMW_PROTO_H */
