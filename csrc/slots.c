/* slots.c - the slot array's memory. */
#include <stdlib.h>
#include <string.h>
#include "kmallocwd.h"

struct memalloc_info *kmw_slots_alloc(size_t n)
{
	struct memalloc_info *s;

	if (n == 0 || n > SIZE_MAX / sizeof(*s))
		return NULL;
	s = aligned_alloc(KMW_CACHELINE, n * sizeof(*s));
	if (s) {
		size_t i;

		memset(s, 0, n * sizeof(*s));
		/* The initial contents count as one section's: the witness agrees. */
		for (i = 0; i < n; i++)
			s[i].witness = memalloc_witness(0, 0, 0, 0);
	}
	return s;
}

void kmw_slots_free(struct memalloc_info *slots)
{
	free(slots);
}

void kmw_request_stop(int *stop)
{
	__atomic_store_n(stop, 1, __ATOMIC_RELEASE);
}
