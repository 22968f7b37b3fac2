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

/*
 * Format 2: the steps address a byte buffer laid out with the protocol's
 * declared fields.  offset and width (1, 2, 4 or 8 bytes) name the field;
 * a load with index_step >= 0 is the latch's copy[VAR & 1].F: it reads at
 * offset + (loaded[index_step] & 1) * stride (an address dependency).
 */
struct kmw_step2 { int thread; int kind; uint32_t offset; uint32_t width; uint64_t value;
		   int32_t index_step; uint32_t stride; };

int kmw_replay2_thread(unsigned char *buf, const struct kmw_step2 *steps, uint32_t n,
		       int me, uint32_t *counter, uint64_t *loaded, const int *stop);

#endif
