/*
 * api.c - the public entry points of kmallocwd.h: each checks its protocol
 * number and calls that protocol's row of the generated table.
 */
#include <string.h>
#include "loops.h"

struct kmw_global kmw_global;

int kmw_nr_protocols(void)
{
	return kmw_protocol_count;
}

const char *kmw_protocol_name(int proto)
{
	if (proto < 0 || proto >= kmw_protocol_count)
		return NULL;
	return kmw_protocol_table[proto].name;
}

static const struct kmw_protocol *protocol(int proto)
{
	if (proto < 0 || proto >= kmw_protocol_count)
		return NULL;
	return &kmw_protocol_table[proto];
}

size_t kmw_slot_size(int proto)
{
	const struct kmw_protocol *p = protocol(proto);

	if (!p)
		return 0;
	return p->slot_size ? p->slot_size : sizeof(struct memalloc_info);
}

uint64_t kmw_writer_run(int proto, int mode, struct memalloc_info *slots,
			const uint32_t *idx, uint32_t nidx,
			const struct kmw_request *reqs, uint32_t nreqs,
			uint64_t n, const struct kmw_clock *clock,
			struct kmw_writer *w, const int *stop,
			uint64_t *elapsed_ns)
{
	const struct kmw_protocol *p = protocol(proto);
	struct kmw_wargs a = { slots, idx, nidx, reqs, nreqs, n, clock, w, stop };
	int64_t t0 = kmw_now_ns();
	uint64_t done = 0;

	if (p && nidx && nreqs && nreqs <= KMW_MAX_REQUESTS && !READ_ONCE(*stop)) {
		if (w->j >= nidx || w->q >= nreqs || w->q0 >= nreqs)
			w->j = w->q = w->q0 = 0;
		done = p->writer_run(&a, mode);
	}
	if (elapsed_ns)
		*elapsed_ns = (uint64_t)(kmw_now_ns() - t0);
	return done;
}

void kmw_reader_scan(int proto, struct memalloc_info *slots, size_t nslots,
		     uint64_t passes, const struct kmw_request *reqs,
		     uint32_t nreqs, const int *stop, struct kmw_tally *t)
{
	const struct kmw_protocol *p = protocol(proto);
	struct kmw_sargs a = { slots, nslots, passes, 0, reqs, nreqs, stop, t };
	int64_t t0 = kmw_now_ns();

	/* a format-2 row classifies against the requests: it needs them */
	if (p && nslots && (!p->slot_size ||
			    (reqs && nreqs && nreqs <= KMW_MAX_REQUESTS)))
		p->reader_scan(&a);
	t->elapsed_ns += (uint64_t)(kmw_now_ns() - t0);
}

uint64_t kmw_bench_reads(int proto, struct memalloc_info *slots,
			 size_t nslots, uint64_t n, unsigned long expire,
			 const int *stop, struct kmw_tally *t,
			 uint64_t *elapsed_ns)
{
	const struct kmw_protocol *p = protocol(proto);
	struct kmw_sargs a = { slots, nslots, n, expire, NULL, 0, stop, t };
	int64_t t0 = kmw_now_ns();
	uint64_t done = 0;

	if (p && nslots && !READ_ONCE(*stop))
		done = p->bench_reads(&a);
	if (elapsed_ns)
		*elapsed_ns = (uint64_t)(kmw_now_ns() - t0);
	return done;
}

void kmw_start_memalloc_timer(int proto, struct memalloc_info *m,
			      gfp_t gfp_mask, unsigned int order,
			      unsigned long jiffies)
{
	const struct kmw_protocol *p = protocol(proto);

	if (p && p->start)
		p->start(m, gfp_mask, order, jiffies);
}

void kmw_stop_memalloc_timer(int proto, struct memalloc_info *m,
			     gfp_t gfp_mask)
{
	const struct kmw_protocol *p = protocol(proto);

	if (p && p->stop)
		p->stop(m, gfp_mask);
}

int kmw_read_slot(int proto, struct memalloc_info *m,
		  struct memalloc_info *snap, uint64_t *retries,
		  const int *stop)
{
	const struct kmw_protocol *p = protocol(proto);
	struct kmw_rctx c = { 0, stop, 0 };
	int r = KMW_ABORTED;

	memset(snap, 0, sizeof(*snap));
	if (p && p->read)
		r = p->read(m, snap, &c);
	if (retries)
		*retries += c.retries;
	return r;
}

void kmw_tally_read(struct kmw_tally *t, int r, const struct memalloc_info *snap,
		    size_t slot)
{
	t->attempts++;
	kmw_tally(t, r, snap, slot, NULL, 0);
}

int kmw_classify(const struct memalloc_info *snap,
		 const struct kmw_request *reqs, uint32_t nreqs)
{
	return memalloc_classify(snap, reqs, nreqs);
}

uint64_t kmw_witness(unsigned int end_seq, unsigned long start,
		     unsigned int order, gfp_t gfp)
{
	return memalloc_witness(end_seq, start, order, gfp);
}

/*
 * The patch's is_stalling_task() with the chosen protocol's reader: the
 * snapshot goes to *snap (the patch's static "memalloc"), the reader's
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
