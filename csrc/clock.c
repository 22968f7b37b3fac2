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

/* --preempt: whether the next section yields, with probability preempt / 2^32. */
int kmw_preempt_draw(struct kmw_writer *w)
{
	return (uint32_t)xorshift64(&w->rng) < w->preempt;
}

void kmw_yield(void)
{
	sched_yield();
}

/* TSC ticks per microsecond, measured once over ~5 ms (0 off x86-64). */
uint64_t kmw_tsc_per_us(void)
{
#if defined(__x86_64__)
	uint32_t lo, hi;
	uint64_t c0, c1;
	int64_t t0 = kmw_now_ns(), t1;

	__asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
	c0 = ((uint64_t)hi << 32) | lo;
	do
		t1 = kmw_now_ns();
	while (t1 - t0 < 5000000);
	__asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
	c1 = ((uint64_t)hi << 32) | lo;
	return (c1 - c0) * 1000 / (uint64_t)(t1 - t0);
#else
	return 0;
#endif
}
