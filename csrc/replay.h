/* replay.h - the step interpreter of kmallocwd replay (replay.c). */
#ifndef KMW_REPLAY_H
#define KMW_REPLAY_H

#include <stdint.h>
#include "memalloc.h"

/* kind: 0 load, 1 store, 2 fence (value: 0 barrier, 1 mb, 2 wmb, 3 rmb), 3 no-op;
 * field: 0 sequence, 1 valid, 2 dumped, 3 start, 4 order, 5 gfp, 6 witness */
struct kmw_step { int thread; int kind; int field; uint64_t value; };

int kmw_replay_thread(struct memalloc_info *m, const struct kmw_step *steps, uint32_t n,
		      int me, uint32_t *counter, uint64_t *loaded, const int *stop);

#endif
