/*
 * bench.c - the read loop of the benchmarks (bench/, `make bench`).
 *
 * kmw_reader_scan() is the emulator's watchdog: after every read it checks
 * the snapshot's torn-read witness (a 64-bit hash) and tallies the outcome,
 * which costs more than most readers' read itself.  This loop does the
 * protocol's read and what the seed's is_stalling_task() does with it (the
 * time_after_eq() check), and nothing else, so that its time per read is
 * the reader's own cost.  The fields of each accepted snapshot are folded
 * into a sink with XOR (one ALU op each), so that the compiler cannot drop
 * the copy as dead stores.
 *
 * It takes each protocol's reader from variants.h, as protocols.c does.
 * No global state: everything is in the arguments.
 */
#include "kmallocwd.h"
#include "variants.h"

#define BENCH_FN(id, name, w, rd)						\
static __attribute__((noinline)) uint64_t				\
bench_reads_##id(struct memalloc_info *slots, size_t nslots, uint64_t n,	\
		 unsigned long expire, const int *stop,			\
		 struct kmw_bench_counts *out)				\
{									\
	struct kmw_rctx c = { 0, stop };				\
	uint64_t acc = 0, odd = 0, inval = 0, stalling = 0, sink = 0;	\
	uint64_t i;							\
	size_t s = 0;							\
									\
	for (i = 0; i < n; i++) {					\
		struct memalloc_info snap;				\
		int r;							\
									\
		if ((i & 1023) == 1023 && READ_ONCE(*stop))		\
			break;						\
		r = rd(&slots[s], &snap, &c);				\
		if (++s == nslots)					\
			s = 0;						\
		if (r == KMW_ACCEPT) {					\
			acc++;						\
			/* the seed's check on the snapshot */		\
			stalling += time_after_eq(expire, snap.start);	\
			sink ^= snap.start ^ snap.witness ^		\
				((uint64_t)snap.gfp << 32 | snap.order) ^ \
				snap.sequence;				\
		} else if (r == KMW_REJECT_ODD) {			\
			odd++;						\
		} else if (r == KMW_REJECT_INVALID) {			\
			inval++;					\
		} else {						\
			break;	/* KMW_ABORTED: a stop request */	\
		}							\
	}								\
	out->accepted += acc;						\
	out->rejected_odd += odd;					\
	out->rejected_invalid += inval;					\
	out->stalling += stalling;					\
	out->retries += c.retries;					\
	out->sink ^= sink;						\
	return i;							\
}
KMW_VARIANTS(BENCH_FN)
#undef BENCH_FN

uint64_t kmw_bench_reads(int proto, struct memalloc_info *slots,
			 size_t nslots, uint64_t n, unsigned long expire,
			 const int *stop, struct kmw_bench_counts *counts,
			 uint64_t *elapsed_ns)
{
	int64_t t0 = kmw_now_ns();
	uint64_t done = 0;

	if (!nslots || READ_ONCE(*stop))
		goto out;
	switch (proto) {
#define CALL(id, name, w, rd)							\
	case id:							\
		done = bench_reads_##id(slots, nslots, n, expire, stop,	\
					counts);			\
		break;
	KMW_VARIANTS(CALL)
#undef CALL
	}
out:
	if (elapsed_ns)
		*elapsed_ns = (uint64_t)(kmw_now_ns() - t0);
	return done;
}
