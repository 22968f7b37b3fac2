/*
 * replay.c - runs a model checker's counterexample (kmallocwd replay) on
 * real threads and a real slot: a step interpreter.  Both threads walk the
 * same step list; each executes its own steps, in list order, handing
 * over to the next step through a step counter with acquire/release, so
 * the slot sees exactly the trace's order.  A reordering the model found
 * is already in that order (the steps are the reordered program text).
 */
#include <sched.h>
#include <stdint.h>
#include "kmallocwd.h"
#include "replay.h"

enum { KMW_STEP_LOAD = 0, KMW_STEP_STORE = 1, KMW_STEP_FENCE = 2, KMW_STEP_NOP = 3 };
enum { KMW_F_SEQUENCE, KMW_F_VALID, KMW_F_DUMPED, KMW_F_START, KMW_F_ORDER, KMW_F_GFP,
       KMW_F_WITNESS };
enum { KMW_FENCE_BARRIER, KMW_FENCE_MB, KMW_FENCE_WMB, KMW_FENCE_RMB };

static uint64_t load_field(struct memalloc_info *m, int field)
{
	switch (field) {
	case KMW_F_SEQUENCE: return READ_ONCE(m->sequence);
	case KMW_F_VALID: return READ_ONCE(m->valid);
	case KMW_F_DUMPED: return READ_ONCE(m->dumped);
	case KMW_F_START: return READ_ONCE(m->start);
	case KMW_F_ORDER: return READ_ONCE(m->order);
	case KMW_F_GFP: return READ_ONCE(m->gfp);
	default: return READ_ONCE(m->witness);
	}
}

static void store_field(struct memalloc_info *m, int field, uint64_t v)
{
	switch (field) {
	case KMW_F_SEQUENCE: WRITE_ONCE(m->sequence, (unsigned int)v); break;
	case KMW_F_VALID: WRITE_ONCE(m->valid, (unsigned char)v); break;
	case KMW_F_DUMPED: WRITE_ONCE(m->dumped, (unsigned char)v); break;
	case KMW_F_START: WRITE_ONCE(m->start, (unsigned long)v); break;
	case KMW_F_ORDER: WRITE_ONCE(m->order, (unsigned int)v); break;
	case KMW_F_GFP: WRITE_ONCE(m->gfp, (gfp_t)v); break;
	default: WRITE_ONCE(m->witness, v); break;
	}
}

/*
 * Wait until the step counter says it is step i's turn (the previous step's
 * release pairs with this acquire).  Returns 1 when *stop was set meanwhile.
 */
static int wait_turn(uint32_t *counter, uint32_t i, const int *stop)
{
	unsigned spins = 0;

	while (__atomic_load_n(counter, __ATOMIC_ACQUIRE) != i) {
		if (__atomic_load_n(stop, __ATOMIC_RELAXED))
			return 1;
		if (++spins > 1000)
			sched_yield();
		else
			cpu_relax();
	}
	return 0;
}

/* A fence step: the barrier the trace has there. */
static void fence(uint64_t which)
{
	if (which == KMW_FENCE_MB)
		smp_mb();
	else if (which == KMW_FENCE_WMB)
		smp_wmb();
	else if (which == KMW_FENCE_RMB)
		smp_rmb();
	else
		barrier();
}

/*
 * Execute thread `me`'s steps; loaded[i] gets what step i loaded.  Returns
 * the number of steps executed, or -1 if *stop was set while waiting.
 */
int kmw_replay_thread(struct memalloc_info *m, const struct kmw_step *steps, uint32_t n,
		      int me, uint32_t *counter, uint64_t *loaded, const int *stop)
{
	int done = 0;

	for (uint32_t i = 0; i < n; i++) {
		if (steps[i].thread != me)
			continue;
		if (wait_turn(counter, i, stop))
			return -1;
		switch (steps[i].kind) {
		case KMW_STEP_LOAD:
			loaded[i] = load_field(m, steps[i].field);
			break;
		case KMW_STEP_STORE:
			store_field(m, steps[i].field, steps[i].value);
			break;
		case KMW_STEP_FENCE:
			fence(steps[i].value);
			break;
		default:
			break;
		}
		done++;
		__atomic_store_n(counter, i + 1, __ATOMIC_RELEASE);
	}
	return done;
}

/* Format 2: one access of `width` bytes at buf + off (naturally aligned). */
static uint64_t load_bytes(unsigned char *buf, uint32_t off, uint32_t width)
{
	switch (width) {
	case 1: return READ_ONCE(*(uint8_t *)(buf + off));
	case 2: return READ_ONCE(*(uint16_t *)(buf + off));
	case 4: return READ_ONCE(*(uint32_t *)(buf + off));
	default: return READ_ONCE(*(uint64_t *)(buf + off));
	}
}

static void store_bytes(unsigned char *buf, uint32_t off, uint32_t width, uint64_t v)
{
	switch (width) {
	case 1: WRITE_ONCE(*(uint8_t *)(buf + off), (uint8_t)v); break;
	case 2: WRITE_ONCE(*(uint16_t *)(buf + off), (uint16_t)v); break;
	case 4: WRITE_ONCE(*(uint32_t *)(buf + off), (uint32_t)v); break;
	default: WRITE_ONCE(*(uint64_t *)(buf + off), v); break;
	}
}

/*
 * kmw_replay_thread() over a format-2 protocol's byte buffer: the same
 * hand-over, each step naming an offset and a width.  A load through the
 * latch's index takes its copy from the value an earlier step of this
 * thread loaded, as raw_read_seqcount_latch()'s caller does.
 */
int kmw_replay2_thread(unsigned char *buf, const struct kmw_step2 *steps, uint32_t n,
		       int me, uint32_t *counter, uint64_t *loaded, const int *stop)
{
	int done = 0;

	for (uint32_t i = 0; i < n; i++) {
		const struct kmw_step2 *s = &steps[i];
		uint32_t off;

		if (s->thread != me)
			continue;
		if (wait_turn(counter, i, stop))
			return -1;
		switch (s->kind) {
		case KMW_STEP_LOAD:
			off = s->offset;
			if (s->index_step >= 0)
				off += (uint32_t)(loaded[s->index_step] & 1) * s->stride;
			loaded[i] = load_bytes(buf, off, s->width);
			break;
		case KMW_STEP_STORE:
			store_bytes(buf, s->offset, s->width, s->value);
			break;
		case KMW_STEP_FENCE:
			fence(s->value);
			break;
		default:
			break;
		}
		done++;
		__atomic_store_n(counter, i + 1, __ATOMIC_RELEASE);
	}
	return done;
}
