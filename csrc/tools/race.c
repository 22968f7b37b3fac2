/*
 * race.c - a standalone harness for ThreadSanitizer: one writer thread and
 * one reader thread run a protocol's C loops on one slot, with no Python in
 * between, so that TSan sees every access.  c11 must come out clean; the
 * kernel-style protocols (plain accesses racing by the C11 rules) must not.
 *
 *   cc -fsanitize=thread -O1 -g -Icsrc csrc/tools/race.c csrc/api.c \
 *      build/gen/kmw_protocols.c csrc/clock.c csrc/slots.c -lpthread -o race
 *   ./race c11 200000
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "kmallocwd.h"

struct run {
	int proto;
	uint64_t pairs;
	struct memalloc_info *slots;
	struct kmw_clock clock;
	int stop;
	struct kmw_tally st;
};

static void *writer(void *arg)
{
	struct run *r = arg;
	const uint32_t idx[1] = { 0 };
	const struct kmw_request req[2] = { { 0x24000c0u, 0 }, { 0x24200cau, 1 } };
	struct kmw_writer w = { .stamp = 1ull << 40 };
	uint64_t elapsed;

	kmw_writer_run(r->proto, KMW_EMULATOR, r->slots, idx, 1, req, 2, r->pairs,
		       &r->clock, &w, &r->stop, &elapsed);
	kmw_request_stop(&r->stop);
	return NULL;
}

static void *reader(void *arg)
{
	struct run *r = arg;

	while (!__atomic_load_n(&r->stop, __ATOMIC_ACQUIRE))
		kmw_reader_scan(r->proto, r->slots, 1, 1024, NULL, 0, &r->stop,
				&r->st);
	return NULL;
}

int main(int argc, char **argv)
{
	struct run r;
	pthread_t w, rd;
	int p;

	memset(&r, 0, sizeof(r));
	if (argc != 3) {
		fprintf(stderr, "usage: %s PROTOCOL PAIRS\n", argv[0]);
		return 2;
	}
	r.proto = -1;
	for (p = 0; p < kmw_nr_protocols(); p++)
		if (!strcmp(argv[1], kmw_protocol_name(p)))
			r.proto = p;
	r.pairs = strtoull(argv[2], NULL, 10);
	if (r.proto < 0 || !r.pairs) {
		fprintf(stderr, "%s: bad protocol or pair count\n", argv[0]);
		return 2;
	}
	r.slots = kmw_slots_alloc(1);
	r.clock.hz = 1000;
	r.clock.t0_ns = kmw_now_ns();
	pthread_create(&rd, NULL, reader, &r);
	pthread_create(&w, NULL, writer, &r);
	pthread_join(w, NULL);
	pthread_join(rd, NULL);
	printf("%s: consistent %llu torn %llu rejected-odd %llu rejected-invalid %llu\n",
	       argv[1], (unsigned long long)r.st.outcome[KMW_O_CONSISTENT],
	       (unsigned long long)(r.st.outcome[KMW_O_TORN_MIXED] +
				    r.st.outcome[KMW_O_TORN_SEQ] +
				    r.st.outcome[KMW_O_TORN_INSIDE]),
	       (unsigned long long)r.st.outcome[KMW_O_REJECTED_ODD],
	       (unsigned long long)r.st.outcome[KMW_O_REJECTED_INVALID]);
	kmw_slots_free(r.slots);
	return 0;
}
