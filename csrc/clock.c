/* clock.c - emulated jiffies and the write-section knobs. */
#define _GNU_SOURCE
#include <sched.h>
#include <time.h>
#include "memalloc.h"

int64_t kmw_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

unsigned long kmw_jiffies(const struct kmw_clock *c)
{
	int64_t dt = kmw_now_ns() - c->t0_ns;

	/* Whole ticks since t0, then wrap like the kernel's unsigned long. */
	return c->initial + (unsigned long)((__int128)dt * c->hz / 1000000000);
}

static inline uint64_t xorshift64(uint64_t *s)
{
	uint64_t x = *s;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

/* Spin for ns nanoseconds, or until a stop is requested (stop may be NULL). */
void kmw_spin_ns(uint64_t ns, const int *stop)
{
	int64_t until = kmw_now_ns() + (int64_t)ns;

	while (kmw_now_ns() < until && !(stop && READ_ONCE(*stop)))
		cpu_relax();
}

void kmw_in_section(struct kmw_knobs *k)
{
	if (k->hold_ns)
		kmw_spin_ns(k->hold_ns, k->stop);
	if (k->preempt && (uint32_t)xorshift64(&k->rng) < k->preempt)
		sched_yield();
}
