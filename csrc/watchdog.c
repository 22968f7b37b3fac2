/*
 * watchdog.c - the patch's kmallocwd() scans over a whole slot array, in C.
 *
 * The emulated watchdog (kmallocwd/watchdog/loop.py) walks its few dozen
 * tasks in Python, as the patch walks for_each_process_thread(); these two
 * functions are the same scans over n slots, so that the watchdog's own
 * cost can be measured at 10^4 and 10^6 tasks.  No state of their own:
 * everything is passed in.
 */
#include "loops.h"

/*
 * The patch's first while(1) loop, one pass: the earliest moment a stall
 * could be due, as a timeout in jiffies.
 *
 *	long t = kmallocwd_timeout;
 *	const unsigned long delta = t - jiffies;
 *	for_each_process_thread(g, p) {
 *		if (likely(!p->memalloc.valid))
 *			continue;
 *		t = min_t(long, t, p->memalloc.start + delta);
 *		if (unlikely(t <= 0))
 *			goto stalling;
 *	}
 *
 * Returns t: <= 0 means "goto stalling", otherwise the jiffies to sleep.
 * The reads are plain, as the patch's ("we might see outdated values").
 */
long kmw_watchdog_due(const struct memalloc_info *slots, size_t n,
		      unsigned long timeout, unsigned long jiffies)
{
	long t = (long)timeout;
	const unsigned long delta = timeout - jiffies;
	size_t i;

	for (i = 0; i < n; i++) {
		long due;

		if (__builtin_expect(!slots[i].valid, 1))
			continue;
		due = (long)(slots[i].start + delta);
		if (due < t)
			t = due;
		if (__builtin_expect(t <= 0, 0))
			break;
	}
	return t;
}

/*
 * The patch's counting pass, the slot half of it (TIF_MEMDIE and
 * fatal_signal_pending() are task flags, not slot fields):
 *
 *	if (is_stalling_task(p, expire))
 *		stalling_tasks++;
 *
 * with the protocol's reader, and every snapshot the reader accepted
 * checked against the witness.  Adds to *t (the loops' one tally).
 */
void kmw_watchdog_count(int proto, struct memalloc_info *slots, size_t n,
			unsigned long expire, struct kmw_tally *t)
{
	int64_t t0 = kmw_now_ns();
	size_t i;

	for (i = 0; i < n; i++) {
		struct memalloc_info snap;
		int r;

		if (kmw_is_stalling_task(proto, &slots[i], expire, &snap, &r))
			t->stalling++;
		t->attempts++;
		kmw_tally(t, r, &snap, i, NULL, 0);
	}
	t->elapsed_ns += (uint64_t)(kmw_now_ns() - t0);
}
