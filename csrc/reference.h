/*
 * reference.h - the benchmarks' yardsticks (reference.c): the patch's
 * start/stop written plainly, and a memory copy bandwidth.  Nothing here
 * depends on the protocol table.
 */
#ifndef KMW_REFERENCE_H
#define KMW_REFERENCE_H

#include <stddef.h>
#include <stdint.h>
#include "memalloc.h"

/*
 * The patch's start_memalloc_timer() / stop_memalloc_timer(), plainly, on
 * one struct memalloc_info: n start/stop pairs of (gfp, order), jiffies
 * read every 256 pairs, as the writer loop of protocols.c does.  Returns
 * the pairs done (fewer than n after a stop request); *elapsed_ns gets the
 * time.
 */
uint64_t kmw_reference_run(struct memalloc_info *m, gfp_t gfp,
			   unsigned int order, uint64_t n,
			   const struct kmw_clock *clock, const int *stop,
			   uint64_t *elapsed_ns);

/*
 * Copy bandwidth: `passes` memcpy()s of a `bytes`-byte buffer into another
 * (both allocated and touched first, then one untimed copy).  Returns the
 * bytes copied, 0 if the buffers could not be had; *elapsed_ns gets the
 * time of the timed copies.
 */
uint64_t kmw_copy_bandwidth(size_t bytes, uint64_t passes,
			    uint64_t *elapsed_ns);

#endif /* KMW_REFERENCE_H */
