/*
 * protocols.c - instantiates the hot loops once per variant of
 * variants.h, so that the barriers and accesses of each are inlined into
 * its own loop with no indirect call per operation.
 */
#include <string.h>
#include "kmallocwd.h"
#include "variants.h"

const char *kmw_protocol_name(int proto)
{
	switch (proto) {
#define NAME(id, name, w, r) case id: return name;
	KMW_VARIANTS(NAME)
#undef NAME
	}
	return NULL;
}

/* ---- the writer loop ---- */

static inline __attribute__((always_inline)) uint64_t
writer_loop(int proto, struct memalloc_info *slots, const uint32_t *idx,
	    uint32_t nidx, const struct kmw_request *reqs, uint32_t nreqs,
	    uint64_t n, const struct kmw_clock *clock, struct kmw_knobs *k,
	    const int *stop)
{
	unsigned long now = kmw_jiffies(clock);
	uint32_t j = 0, q = 0;
	uint64_t i;

	for (i = 0; i < n; i++) {
		struct memalloc_info *m = &slots[idx[j]];
		const struct kmw_request *r = &reqs[q];

		/*
		 * Poll the stop flag and tick the clock every 256 pairs, or
		 * every pair when the knobs make a pair slow.
		 */
		if (((i & 255) == 0 || k) && i) {
			if (READ_ONCE(*stop))
				break;
			now = kmw_jiffies(clock);
		}
		if (++j == nidx)
			j = 0;
		if (++q == nreqs)
			q = 0;
		switch (proto) {
#define WRITE(id, name, w, rd)						\
		case id:						\
			w##_start_memalloc_timer(m, r->gfp, r->order, now, k); \
			/* __alloc_pages_slowpath(): opaque to the compiler */ \
			barrier();					\
			if (k && k->alloc_ns)				\
				kmw_spin_ns(k->alloc_ns, stop);		\
			w##_stop_memalloc_timer(m, r->gfp);		\
			break;
		KMW_VARIANTS(WRITE)
#undef WRITE
		}
	}
	return i;
}

/* One copy of the loop per protocol, and per knobs-or-not. */
#define WRITER_FN(id, name, w, rd)					\
static uint64_t writer_##id(struct memalloc_info *s, const uint32_t *x,	\
			    uint32_t nx, const struct kmw_request *rq,	\
			    uint32_t nrq, uint64_t n,			\
			    const struct kmw_clock *c,			\
			    struct kmw_knobs *k, const int *stop)	\
{									\
	if (k)								\
		return writer_loop(id, s, x, nx, rq, nrq, n, c, k, stop); \
	return writer_loop(id, s, x, nx, rq, nrq, n, c, NULL, stop);	\
}
KMW_VARIANTS(WRITER_FN)
#undef WRITER_FN

uint64_t kmw_writer_run(int proto, struct memalloc_info *slots,
			const uint32_t *idx, uint32_t nidx,
			const struct kmw_request *reqs, uint32_t nreqs,
			uint64_t n, const struct kmw_clock *clock,
			struct kmw_knobs *knobs, const int *stop,
			uint64_t *elapsed_ns)
{
	int64_t t0 = kmw_now_ns();
	uint64_t done = 0;

	if (READ_ONCE(*stop) || !nidx || !nreqs)
		goto out;
	if (knobs && !knobs->hold_ns && !knobs->preempt && !knobs->alloc_ns)
		knobs = NULL;
	if (knobs)
		knobs->stop = stop;
	switch (proto) {
#define CALL(id, name, w, rd)						\
	case id:							\
		done = writer_##id(slots, idx, nidx, reqs, nreqs, n,	\
				   clock, knobs, stop);			\
		break;
	KMW_VARIANTS(CALL)
#undef CALL
	}
out:
	if (elapsed_ns)
		*elapsed_ns = (uint64_t)(kmw_now_ns() - t0);
	return done;
}

/* ---- the reader loop (the watchdog's scan) ---- */

static inline __attribute__((always_inline)) void
tally(struct kmw_reader_stats *st, int outcome,
      const struct memalloc_info *snap, size_t slot)
{
	switch (outcome) {
	case KMW_ACCEPT:
		if (!memalloc_torn(snap)) {
			st->consistent++;
			break;
		}
		if (!st->torn++) {
			st->first_torn_ns = kmw_now_ns();
			st->first_torn_slot = slot;
			st->first_torn = *snap;
		}
		break;
	case KMW_REJECT_ODD:
		st->rejected_odd++;
		break;
	case KMW_REJECT_INVALID:
		st->rejected_invalid++;
		break;
	}
}

#define READER_FN(id, name, w, rd)					\
static void reader_##id(struct memalloc_info *slots, size_t nslots,	\
			uint64_t passes, const int *stop,		\
			struct kmw_reader_stats *st)			\
{									\
	struct kmw_rctx c = { 0, stop };				\
	uint64_t p;							\
	size_t s;							\
									\
	for (p = 0; p < passes; p++) {					\
		for (s = 0; s < nslots; s++) {				\
			struct memalloc_info snap;			\
			int r;						\
									\
			if ((s & 1023) == 1023 && READ_ONCE(*stop))	\
				goto out;				\
			r = rd(&slots[s], &snap, &c);			\
			if (r == KMW_ABORTED)				\
				goto out;				\
			tally(st, r, &snap, s);				\
		}							\
		st->scans++;						\
		if (READ_ONCE(*stop))					\
			break;						\
	}								\
out:									\
	st->retries += c.retries;					\
}
KMW_VARIANTS(READER_FN)
#undef READER_FN

void kmw_reader_scan(int proto, struct memalloc_info *slots, size_t nslots,
		     uint64_t passes, const int *stop,
		     struct kmw_reader_stats *st)
{
	int64_t t0 = kmw_now_ns();

	switch (proto) {
#define CALL(id, name, w, rd)						\
	case id:							\
		reader_##id(slots, nslots, passes, stop, st);		\
		break;
	KMW_VARIANTS(CALL)
#undef CALL
	}
	st->elapsed_ns += (uint64_t)(kmw_now_ns() - t0);
}

/* ---- one-shot entry points ---- */

void kmw_start_memalloc_timer(int proto, struct memalloc_info *m,
			      gfp_t gfp_mask, unsigned int order,
			      unsigned long jiffies)
{
	switch (proto) {
#define START(id, name, w, rd)						\
	case id:							\
		w##_start_memalloc_timer(m, gfp_mask, order, jiffies, NULL); \
		break;
	KMW_VARIANTS(START)
#undef START
	}
}

void kmw_stop_memalloc_timer(int proto, struct memalloc_info *m,
			     gfp_t gfp_mask)
{
	switch (proto) {
#define STOP(id, name, w, rd)						\
	case id:							\
		w##_stop_memalloc_timer(m, gfp_mask);			\
		break;
	KMW_VARIANTS(STOP)
#undef STOP
	}
}

int kmw_read_slot(int proto, struct memalloc_info *m,
		  struct memalloc_info *snap, uint64_t *retries,
		  const int *stop)
{
	struct kmw_rctx c = { 0, stop };
	int r = KMW_ABORTED;

	memset(snap, 0, sizeof(*snap));
	switch (proto) {
#define READ(id, name, w, rd)						\
	case id:							\
		r = rd(m, snap, &c);					\
		break;
	KMW_VARIANTS(READ)
#undef READ
	}
	if (retries)
		*retries += c.retries;
	return r;
}

int kmw_snapshot_torn(const struct memalloc_info *snap)
{
	return memalloc_torn(snap);
}

uint64_t kmw_witness(unsigned int end_seq, unsigned long start,
		     unsigned int order, gfp_t gfp)
{
	return memalloc_witness(end_seq, start, order, gfp);
}

/*
 * The seed's is_stalling_task() with the chosen protocol's reader: the
 * snapshot goes to *snap (the seed's static "memalloc"), the reader's
 * verdict to *outcome.  No stop flag: a looping reader here waits for the
 * write section in progress to end, which it does, since a writer only
 * ever stops between sections.
 */
int kmw_is_stalling_task(int proto, struct memalloc_info *m,
			 unsigned long expire, struct memalloc_info *snap,
			 int *outcome)
{
	int r = kmw_read_slot(proto, m, snap, NULL, NULL);

	if (outcome)
		*outcome = r;
	if (r != KMW_ACCEPT)
		return 0;
	/* This is a valid "struct memalloc_info". Check for timeout. */
	return time_after_eq(expire, snap->start);
}
