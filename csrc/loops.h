/*
 * loops.h - the hot loops every protocol runs, written once.  The generated
 * protocol code (kmallocwd/protocols/cgen.py) defines, for each protocol P,
 * P_start_memalloc_timer(), P_stop_memalloc_timer() and P_read(), then one
 * small function per loop whose body is one of the macros below, so that the
 * protocol's accesses and barriers are inlined into its own loops with no
 * indirect call per operation.
 *
 * Two modes: KMW_EMULATOR stores the torn-read witness and a unique stamp
 * per section, classifies every snapshot and counts overlaps; KMW_PROTOCOL
 * runs only the protocol's own operations (start = jiffies, no witness, no
 * knobs), what the kernel would pay.
 */
#ifndef KMW_LOOPS_H
#define KMW_LOOPS_H

#include <string.h>
#include "kmallocwd.h"
#include "locks.h"

/*
 * The reader's copy: the patch's fields one by one in the struct's order, as
 * plain loads (KMW_COPY) or READ_ONCE (KMW_COPY_ONCE), and the emulator's
 * witness after them in emulator mode.  KMW_COPY_SEQ is the patch's
 * "memalloc = *m" in protocol mode: the sequence first, then the rest.
 */
#define KMW_COPY(snap, m, emu) do {				\
	(snap)->valid = (m)->valid;				\
	(snap)->dumped = (m)->dumped;				\
	(snap)->start = (m)->start;				\
	(snap)->order = (m)->order;				\
	(snap)->gfp = (m)->gfp;					\
	if (emu)						\
		(snap)->witness = (m)->witness;			\
} while (0)

#define KMW_COPY_ONCE(snap, m, emu) do {			\
	(snap)->valid = READ_ONCE((m)->valid);			\
	(snap)->dumped = READ_ONCE((m)->dumped);		\
	(snap)->start = READ_ONCE((m)->start);			\
	(snap)->order = READ_ONCE((m)->order);			\
	(snap)->gfp = READ_ONCE((m)->gfp);			\
	if (emu)						\
		(snap)->witness = READ_ONCE((m)->witness);	\
} while (0)

#define KMW_COPY_SEQ(snap, m) do {				\
	(snap)->sequence = (m)->sequence;			\
	KMW_COPY(snap, m, 0);					\
} while (0)

/* A writer loop's arguments (kmw_writer_run()'s). */
struct kmw_wargs {
	struct memalloc_info *slots;
	const uint32_t *idx;
	uint32_t nidx;
	const struct kmw_request *reqs;
	uint32_t nreqs;
	uint64_t n;
	const struct kmw_clock *clock;
	struct kmw_writer *w;
	const int *stop;
};

/* A read loop's arguments (kmw_reader_scan()'s and kmw_bench_reads()'s). */
struct kmw_sargs {
	struct memalloc_info *slots;
	size_t nslots;
	uint64_t n;		/* passes (scan) or reads (bench) */
	unsigned long expire;
	const struct kmw_request *reqs;
	uint32_t nreqs;
	const int *stop;
	struct kmw_tally *t;
};

/* One protocol's entry points: one row of the generated table. */
struct kmw_protocol {
	const char *name;
	uint64_t (*writer_run)(const struct kmw_wargs *a, int mode);
	void (*reader_scan)(const struct kmw_sargs *a);
	uint64_t (*bench_reads)(const struct kmw_sargs *a);
	void (*start)(struct memalloc_info *m, gfp_t gfp_mask, unsigned int order,
		      unsigned long jiffies);
	void (*stop)(struct memalloc_info *m, gfp_t gfp_mask);
	int (*read)(struct memalloc_info *m, struct memalloc_info *snap,
		    struct kmw_rctx *c);
	/* format 2: the bytes of one slot (its own struct); 0: memalloc_info.
	 * A format-2 row has no one-shot start, stop and read (NULL). */
	size_t slot_size;
};

extern const struct kmw_protocol kmw_protocol_table[];
extern const int kmw_protocol_count;

/*
 * The writer loop: n start/stop pairs round-robin over the slots idx[],
 * slot idx[j] of round r making request (r + j) mod nreqs, so that
 * consecutive sections of a slot, and neighbouring slots, differ.  The stop
 * flag is polled (and jiffies ticked) every 256 pairs, or every pair when
 * a knob makes a pair slow (slow_; KNOBS: the emulator's build).  Expands to a block that returns the pairs
 * done.
 */
#define KMW_WRITER_PASS(a, START, STOP, EMU, KNOBS) do {			\
	struct kmw_writer *const w_ = (a)->w;					\
	unsigned long now_ = kmw_jiffies((a)->clock);				\
	uint32_t j_ = w_->j, q_ = w_->q, q0_ = w_->q0;				\
	uint64_t stamp_ = w_->stamp, i_;					\
	const int slow_ = w_->hold_cycles || w_->alloc_ns || w_->preempt;	\
	struct kmw_pause pause_ = { 0, 0 };					\
										\
	for (i_ = 0; i_ < (a)->n; i_++) {					\
		struct memalloc_info *m_ = &(a)->slots[(a)->idx[j_]];		\
		const struct kmw_request *r_ = &(a)->reqs[q_];			\
										\
		if (((i_ & 255) == 0 || ((KNOBS) && slow_)) && i_) {		\
			if (READ_ONCE(*(a)->stop))				\
				break;						\
			if (!(EMU))						\
				now_ = kmw_jiffies((a)->clock);		\
		}								\
		if ((KNOBS) && slow_) {						\
			pause_.cycles = w_->hold_cycles;			\
			pause_.yield = w_->preempt && kmw_preempt_draw(w_);	\
		}								\
		START(m_, r_->gfp, r_->order,					\
		      (EMU) ? (stamp_++ << KMW_STAMP_SHIFT) | q_ : now_,	\
		      pause_, (EMU), (KNOBS));					\
		/* __alloc_pages_slowpath(): opaque to the compiler */		\
		barrier();							\
		if ((KNOBS) && w_->alloc_ns)					\
			kmw_spin_ns(w_->alloc_ns, (a)->stop);			\
		STOP(m_, r_->gfp);						\
		if (++q_ == (a)->nreqs)						\
			q_ = 0;							\
		if (++j_ == (a)->nidx) {					\
			j_ = 0;							\
			if (++q0_ == (a)->nreqs)				\
				q0_ = 0;					\
			q_ = q0_;						\
		}								\
	}									\
	w_->j = j_;								\
	w_->q = q_;								\
	w_->q0 = q0_;								\
	w_->stamp = stamp_;							\
	return i_;								\
} while (0)

/*
 * Protocol mode on one slot with one request: the slot and the request are
 * the caller's own (current->memalloc, the gfp and order it was called
 * with), not an emulator's table, so they are hoisted out of the loop.
 * What remains is what the kernel pays per allocation.
 */
#define KMW_WRITER_ONE(a, START, STOP) do {					\
	struct memalloc_info *const m_ = &(a)->slots[(a)->idx[0]];		\
	const gfp_t gfp_ = (a)->reqs[0].gfp;					\
	const unsigned int order_ = (a)->reqs[0].order;				\
	unsigned long now_ = kmw_jiffies((a)->clock);				\
	const struct kmw_pause pause_ = { 0, 0 };				\
	uint64_t i_;								\
										\
	for (i_ = 0; i_ < (a)->n; i_++) {					\
		if ((i_ & 255) == 0 && i_) {					\
			if (READ_ONCE(*(a)->stop))				\
				break;						\
			now_ = kmw_jiffies((a)->clock);				\
		}								\
		START(m_, gfp_, order_, now_, pause_, 0, KMW_NO_KNOBS);		\
		/* __alloc_pages_slowpath(): opaque to the compiler */		\
		barrier();							\
		STOP(m_, gfp_);							\
	}									\
	return i_;								\
} while (0)

/*
 * The builds of the writer loop a protocol has: protocol mode (on one slot
 * and one request, or on many), and emulator mode (EMU, a function of its
 * own so that it can be read in the object code).  The emulator has one
 * build whatever the knobs: they are tested at run time, and --hold-ns and
 * --preempt sit only where the protocol already has a compiler barrier in
 * its section (kmw_in_section()); a section with none has nowhere to be
 * held open without changing its code, and they do nothing there.  A knob
 * changes the timing, not the program.
 */
#define KMW_WRITER_LOOP(a, mode, START, STOP, EMU) do {			\
	if ((mode) == KMW_PROTOCOL && (a)->nidx == 1 && (a)->nreqs == 1)	\
		KMW_WRITER_ONE(a, START, STOP);					\
	if ((mode) == KMW_PROTOCOL)						\
		KMW_WRITER_PASS(a, START, STOP, 0, KMW_NO_KNOBS);		\
	return EMU(a);								\
} while (0)

/* The one outcome tally: what each read gave, and the first torn snapshot. */
static inline void kmw_tally(struct kmw_tally *t, int r,
			     const struct memalloc_info *snap, size_t slot,
			     const struct kmw_request *reqs, uint32_t nreqs)
{
	int o;

	switch (r) {
	case KMW_ACCEPT:
		o = memalloc_classify(snap, reqs, nreqs);
		break;
	case KMW_REJECT_ODD:
		o = KMW_O_REJECTED_ODD;
		break;
	case KMW_REJECT_INVALID:
		o = KMW_O_REJECTED_INVALID;
		break;
	default:
		return;
	}
	t->outcome[o]++;
	if (kmw_outcome_torn(o) && !t->first_torn_ns) {
		t->first_torn_ns = kmw_now_ns();
		t->first_torn_slot = slot;
		t->first_torn_outcome = o;
		t->first_torn = *snap;
	}
}

/*
 * The watchdog's scan in emulator mode: passes over every slot, each read
 * bracketed by two loads of the sequence (the emulator's, not the
 * protocol's) that say whether a write section overlapped it (the sequence
 * was odd or changed, or the reader had to retry or wait for the slot's own
 * lock; a wait on a global lock may be another slot's section), and
 * each snapshot the reader accepted classified.  Overlaps count only reads
 * not refused for valid == 0: those could have accepted a torn snapshot.
 */
#define KMW_READER_SCAN(a, READ) do {						\
	struct kmw_rctx c_ = { 0, (a)->stop, 0 };				\
	struct kmw_tally *const t_ = (a)->t;					\
	uint64_t p_;								\
	size_t s_;								\
										\
	for (p_ = 0; p_ < (a)->n; p_++) {					\
		for (s_ = 0; s_ < (a)->nslots; s_++) {				\
			struct memalloc_info *m_ = &(a)->slots[s_];		\
			struct memalloc_info snap_;				\
			uint64_t evidence_ = c_.evidence;			\
			unsigned int pre_, post_;				\
			int r_;							\
										\
			if ((s_ & 1023) == 1023 && READ_ONCE(*(a)->stop))	\
				goto out_;					\
			pre_ = READ_ONCE(m_->sequence);				\
			/* the read's loads stay between pre_ and post_ */	\
			barrier();						\
			r_ = READ(m_, &snap_, &c_, 1);				\
			barrier();						\
			post_ = READ_ONCE(m_->sequence);			\
			if (r_ == KMW_ABORTED)					\
				goto out_;					\
			t_->attempts++;						\
			/* power: a section overlapped a read of a valid slot */\
			if (r_ != KMW_REJECT_INVALID)				\
				t_->overlaps += (pre_ & 1) || pre_ != post_ ||	\
						c_.evidence != evidence_;	\
			kmw_tally(t_, r_, &snap_, s_, (a)->reqs, (a)->nreqs);	\
		}								\
		t_->scans++;							\
		if (READ_ONCE(*(a)->stop))					\
			break;							\
	}									\
out_:										\
	t_->retries += c_.retries;						\
} while (0)

/*
 * The benchmarks' read loop, protocol mode: n reads round-robin with the
 * protocol's reader and the patch's time_after_eq(expire, start), nothing
 * else; the accepted fields are folded into a sink so that the copy is not
 * dead code.  Expands to a block that returns the reads done.
 */
#define KMW_BENCH_READS(a, READ) do {						\
	struct kmw_rctx c_ = { 0, (a)->stop, 0 };				\
	uint64_t acc_ = 0, odd_ = 0, inval_ = 0, stalling_ = 0, sink_ = 0, i_;	\
	size_t s_ = 0;								\
										\
	for (i_ = 0; i_ < (a)->n; i_++) {					\
		struct memalloc_info snap_;					\
		int r_;								\
										\
		if ((i_ & 1023) == 1023 && READ_ONCE(*(a)->stop))		\
			break;							\
		r_ = READ(&(a)->slots[s_], &snap_, &c_, 0);			\
		if (++s_ == (a)->nslots)					\
			s_ = 0;							\
		if (r_ == KMW_ACCEPT) {						\
			acc_++;							\
			/* the patch's check on the snapshot */			\
			stalling_ += time_after_eq((a)->expire, snap_.start);	\
			sink_ ^= snap_.start ^					\
				 ((uint64_t)snap_.gfp << 32 | snap_.order) ^	\
				 snap_.sequence;				\
		} else if (r_ == KMW_REJECT_ODD) {				\
			odd_++;							\
		} else if (r_ == KMW_REJECT_INVALID) {				\
			inval_++;						\
		} else {							\
			break;	/* KMW_ABORTED: a stop request */		\
		}								\
	}									\
	(a)->t->outcome[KMW_O_ACCEPTED] += acc_;				\
	(a)->t->outcome[KMW_O_REJECTED_ODD] += odd_;				\
	(a)->t->outcome[KMW_O_REJECTED_INVALID] += inval_;			\
	(a)->t->attempts += i_;							\
	(a)->t->stalling += stalling_;						\
	(a)->t->retries += c_.retries;						\
	(a)->t->sink ^= sink_;							\
	return i_;								\
} while (0)

#endif /* KMW_LOOPS_H */
