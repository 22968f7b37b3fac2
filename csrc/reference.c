/*
 * reference.c - yardsticks for the benchmarks (bench/bench_reference.py).
 *
 * kmw_reference_run(): the patch's start_memalloc_timer() and
 * stop_memalloc_timer() (kmallocwd v3), written plainly on one struct
 * memalloc_info: the gfp check, "if (!valid)", the write section with its
 * two smp_wmb(), valid++ and valid--.  No witness, no knobs, no protocol
 * switch, no slot index or request table: what the kernel would pay per
 * allocation.  Each protocol's writer pair is reported as a ratio to it.
 *
 * kmw_copy_bandwidth(): memcpy() of a buffer larger than the last-level
 * cache, for the scan's physical limit (bytes per slot / bandwidth).
 */
#include <stdlib.h>
#include <string.h>
#include "reference.h"

static inline __attribute__((always_inline)) void
ref_start_memalloc_timer(struct memalloc_info *m, const gfp_t gfp_mask,
			 const unsigned int order, unsigned long jiffies)
{
	/* We don't check for stalls for !__GFP_RECLAIM allocations. */
	if (!(gfp_mask & __GFP_RECLAIM))
		return;
	/* We don't check for stalls for nested __GFP_RECLAIM allocations */
	if (!m->valid) {
		m->sequence++;
		smp_wmb(); /* Block is_stalling_task(). */
		m->start = jiffies;
		m->gfp = gfp_mask;
		m->order = order;
		m->dumped = 0;
		smp_wmb(); /* Unblock is_stalling_task(). */
		m->sequence++;
	}
	m->valid++;
}

static inline __attribute__((always_inline)) void
ref_stop_memalloc_timer(struct memalloc_info *m, const gfp_t gfp_mask)
{
	if (gfp_mask & __GFP_RECLAIM)
		m->valid--;
}

uint64_t kmw_reference_run(struct memalloc_info *m, gfp_t gfp,
			   unsigned int order, uint64_t n,
			   const struct kmw_clock *clock, const int *stop,
			   uint64_t *elapsed_ns)
{
	int64_t t0 = kmw_now_ns();
	unsigned long now = kmw_jiffies(clock);
	uint64_t i;

	for (i = 0; i < n; i++) {
		/* Poll the stop flag and tick the clock every 256 pairs. */
		if ((i & 255) == 0 && i) {
			if (READ_ONCE(*stop))
				break;
			now = kmw_jiffies(clock);
		}
		ref_start_memalloc_timer(m, gfp, order, now);
		/* __alloc_pages_slowpath(): opaque to the compiler */
		barrier();
		ref_stop_memalloc_timer(m, gfp);
	}
	if (elapsed_ns)
		*elapsed_ns = (uint64_t)(kmw_now_ns() - t0);
	return i;
}

uint64_t kmw_copy_bandwidth(size_t bytes, uint64_t passes,
			    uint64_t *elapsed_ns)
{
	char *src, *dst;
	int64_t t0;
	uint64_t p;

	if (elapsed_ns)
		*elapsed_ns = 0;
	if (!bytes || !passes)
		return 0;
	src = aligned_alloc(4096, (bytes + 4095) & ~(size_t)4095);
	dst = aligned_alloc(4096, (bytes + 4095) & ~(size_t)4095);
	if (!src || !dst) {
		free(src);
		free(dst);
		return 0;
	}
	/* Fault every page in, then one untimed copy. */
	memset(src, 0x5a, bytes);
	memset(dst, 0, bytes);
	memcpy(dst, src, bytes);
	t0 = kmw_now_ns();
	for (p = 0; p < passes; p++) {
		memcpy(p & 1 ? src : dst, p & 1 ? dst : src, bytes);
		barrier();	/* each copy is done, not merged with the next */
	}
	if (elapsed_ns)
		*elapsed_ns = (uint64_t)(kmw_now_ns() - t0);
	free(src);
	free(dst);
	return bytes * passes;
}
