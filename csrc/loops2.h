/*
 * loops2.h - the hot loops of a format-2 protocol (any declared struct),
 * written once.  The generated code (kmallocwd/protocols/cgen2.py) defines,
 * for each format-2 protocol P, its own slot type struct P_info, its
 * snapshot type struct P_snap, P_start_memalloc_timer(),
 * P_stop_memalloc_timer(), P_read() and P_classify(), then one small
 * function per loop whose body is one of the macros below.
 *
 * The slots are handed over as struct memalloc_info * (the API's type) and
 * cast back to the protocol's own: a slot of P is sizeof(struct P_info)
 * bytes, a whole number of cache lines (kmw_slot_size()).
 *
 * The torn-read witness of format 2 is the slot's section number.  Section
 * k of a slot (k = 1, 2, ...) stores k-derived stamps only: STAMP is k,
 * NOW is (k << KMW_STAMP_SHIFT) | q, GFP and ORDER are request q's, with
 * q = (k + slot) % nreqs, and a field the section increments n times holds
 * n * k after it.  So every covered value names the section it comes from,
 * and a snapshot is consistent when one section k explains them all
 * (P_classify()).  The writer brackets each section with two stores of
 * its number to the slot's kmw_section (2k - 1 before, 2k after): emulator
 * state outside the protocol's fields, never read by the protocol, stored
 * outside the section's own function so that the protocol's accesses are
 * compiled as they are without it.  The scan reads kmw_section before and
 * after each read: the sections a value of that read can come from lie
 * between the two (on x86-64, whose stores are seen in program order).
 */
#ifndef KMW_LOOPS2_H
#define KMW_LOOPS2_H

#include "loops.h"

/* expired() in the emulator: always true for a stamp (the scan's expire). */
#define KMW2_EXPIRE_ALL		((unsigned long)1 << 62)

/*
 * A snapshot whose fields name their section only modulo their width (no
 * 64-bit stamp, no counter of 32 bits or more) is matched against at most
 * this many of the sections its read could see (the latest first).
 */
#define KMW2_MAX_WINDOW		(1U << 20)

/* The emulator's section number of slot M: section k is 2k - 1 while it runs. */
#define KMW2_SECTION(M)		READ_ONCE((M)->kmw_section)

/*
 * Emulator mode: n start/stop pairs round-robin over the slots idx[], the
 * stamps of section k of slot s derived from k and s (above).  The stop
 * flag is polled every 256 pairs, or every pair when a knob makes a pair
 * slow.  Expands to a block that returns the pairs done.
 */
#define KMW2_WRITER_PASS(a, INFO, START, STOP) do {				\
	struct INFO *const slots_ = (struct INFO *)(void *)(a)->slots;		\
	struct kmw_writer *const w_ = (a)->w;					\
	uint32_t j_ = w_->j;							\
	uint64_t i_;								\
	const int slow_ = w_->hold_cycles || w_->alloc_ns || w_->preempt;	\
	struct kmw_pause pause_ = { 0, 0 };					\
										\
	for (i_ = 0; i_ < (a)->n; i_++) {					\
		const uint32_t s_ = (a)->idx[j_];				\
		struct INFO *m_ = &slots_[s_];					\
		/* the writer is this slot's only one: a plain read */		\
		const uint64_t k_ = (m_->kmw_section >> 1) + 1;			\
		const uint32_t q_ = (uint32_t)((k_ + s_) % (a)->nreqs);		\
		const struct kmw_request *r_ = &(a)->reqs[q_];			\
										\
		if (((i_ & 255) == 0 || slow_) && i_ && READ_ONCE(*(a)->stop))	\
			break;							\
		if (slow_) {							\
			pause_.cycles = w_->hold_cycles;			\
			pause_.yield = w_->preempt && kmw_preempt_draw(w_);	\
		}								\
		WRITE_ONCE(m_->kmw_section, 2 * k_ - 1);			\
		START(m_, r_->gfp, r_->order,					\
		      (unsigned long)((k_ << KMW_STAMP_SHIFT) | q_), k_, pause_);	\
		WRITE_ONCE(m_->kmw_section, 2 * k_);				\
		/* __alloc_pages_slowpath(): opaque to the compiler */		\
		barrier();							\
		if (w_->alloc_ns)						\
			kmw_spin_ns(w_->alloc_ns, (a)->stop);			\
		STOP(m_, r_->gfp);						\
		if (++j_ == (a)->nidx)						\
			j_ = 0;							\
	}									\
	w_->j = j_;								\
	return i_;								\
} while (0)

/*
 * Protocol mode: what the kernel pays, the protocol's own operations only
 * (NOW and STAMP are jiffies), round-robin over the slots, one request per
 * slot and pair.  Expands to a block that returns the pairs done.
 */
#define KMW2_WRITER_PROTO(a, INFO, START, STOP) do {				\
	struct INFO *const slots_ = (struct INFO *)(void *)(a)->slots;		\
	unsigned long now_ = kmw_jiffies((a)->clock);				\
	const struct kmw_pause pause_ = { 0, 0 };				\
	uint32_t j_ = 0, q_ = 0;						\
	uint64_t i_;								\
										\
	for (i_ = 0; i_ < (a)->n; i_++) {					\
		struct INFO *m_ = &slots_[(a)->idx[j_]];			\
		const gfp_t gfp_ = (a)->reqs[q_].gfp;				\
										\
		if ((i_ & 255) == 0 && i_) {					\
			if (READ_ONCE(*(a)->stop))				\
				break;						\
			now_ = kmw_jiffies((a)->clock);				\
		}								\
		START(m_, gfp_, (a)->reqs[q_].order, now_, now_, pause_,	\
		      KMW_NO_KNOBS);						\
		/* __alloc_pages_slowpath(): opaque to the compiler */		\
		barrier();							\
		STOP(m_, gfp_);							\
		if (++j_ == (a)->nidx)						\
			j_ = 0;							\
		if (++q_ == (a)->nreqs)						\
			q_ = 0;							\
	}									\
	return i_;								\
} while (0)

/* One read's outcome into the tally, with the first torn snapshot's values. */
#define KMW2_TALLY(t, r, o, snap, slot, lo, hi, VALUES) do {			\
	int o2_ = (r) == KMW_ACCEPT ? (o) : (r) == KMW_REJECT_ODD ?		\
		  KMW_O_REJECTED_ODD : KMW_O_REJECTED_INVALID;			\
										\
	(t)->outcome[o2_]++;							\
	if (kmw_outcome_torn(o2_) && !(t)->first_torn_ns) {			\
		(t)->first_torn_ns = kmw_now_ns();				\
		(t)->first_torn_slot = (slot);					\
		(t)->first_torn_outcome = o2_;					\
		(t)->first_torn_window[0] = (lo);				\
		(t)->first_torn_window[1] = (hi);				\
		VALUES((t)->first_torn_values, snap);				\
	}									\
} while (0)

/*
 * The watchdog's scan in emulator mode: passes over every slot, each read
 * bracketed by two loads of the slot's section number (the emulator's, not
 * the protocol's), which give the sections the snapshot's values can come
 * from, and say whether a write section overlapped the read.
 */
#define KMW2_READER_SCAN(a, INFO, SNAP, READ, CLASSIFY, VALUES) do {		\
	struct INFO *const slots_ = (struct INFO *)(void *)(a)->slots;		\
	struct kmw_rctx c_ = { 0, (a)->stop, 0 };				\
	struct kmw_tally *const t_ = (a)->t;					\
	uint64_t p_;								\
	size_t s_;								\
										\
	for (p_ = 0; p_ < (a)->n; p_++) {					\
		for (s_ = 0; s_ < (a)->nslots; s_++) {				\
			struct INFO *m_ = &slots_[s_];				\
			struct SNAP snap_ = { 0 };				\
			uint64_t evidence_ = c_.evidence, pre_, post_;		\
			int r_, o_ = KMW_O_CONSISTENT;				\
										\
			if ((s_ & 1023) == 1023 && READ_ONCE(*(a)->stop))	\
				goto out_;					\
			pre_ = KMW2_SECTION(m_);				\
			/* the read's loads stay between pre_ and post_ */	\
			barrier();						\
			r_ = READ(m_, &snap_, &c_, KMW2_EXPIRE_ALL);		\
			barrier();						\
			post_ = KMW2_SECTION(m_);				\
			if (r_ == KMW_ABORTED)					\
				goto out_;					\
			t_->attempts++;						\
			if (r_ != KMW_REJECT_INVALID)				\
				t_->overlaps += (pre_ & 1) || pre_ != post_ ||	\
						c_.evidence != evidence_;	\
			if (r_ == KMW_ACCEPT)					\
				o_ = CLASSIFY(&snap_, pre_ >> 1,		\
					      (post_ + 1) >> 1, s_,		\
					      (a)->reqs, (a)->nreqs);		\
			KMW2_TALLY(t_, r_, o_, &snap_, s_, pre_ >> 1,		\
				   (post_ + 1) >> 1, VALUES);			\
		}								\
		t_->scans++;							\
		if (READ_ONCE(*(a)->stop))					\
			break;							\
	}									\
out_:										\
	t_->retries += c_.retries;						\
} while (0)

/*
 * The benchmarks' read loop, protocol mode: n reads round-robin, the
 * accepted snapshots folded into a sink (SINK) so that the loads are not
 * dead code.  Expands to a block that returns the reads done.
 */
#define KMW2_BENCH_READS(a, INFO, SNAP, READ, SINK) do {			\
	struct INFO *const slots_ = (struct INFO *)(void *)(a)->slots;		\
	struct kmw_rctx c_ = { 0, (a)->stop, 0 };				\
	uint64_t acc_ = 0, odd_ = 0, inval_ = 0, sink_ = 0, i_;			\
	size_t s_ = 0;								\
										\
	for (i_ = 0; i_ < (a)->n; i_++) {					\
		struct SNAP snap_;						\
		int r_;								\
										\
		if ((i_ & 1023) == 1023 && READ_ONCE(*(a)->stop))		\
			break;							\
		r_ = READ(&slots_[s_], &snap_, &c_, (a)->expire);		\
		if (++s_ == (a)->nslots)					\
			s_ = 0;							\
		if (r_ == KMW_ACCEPT) {						\
			acc_++;							\
			sink_ ^= SINK(&snap_);					\
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
	(a)->t->retries += c_.retries;						\
	(a)->t->sink ^= sink_;							\
	return i_;								\
} while (0)

#endif /* KMW_LOOPS2_H */
