/*
 * locks.h - the kernel's reader-writer spinlock (qrwlock-style) and spinlock,
 * for the lock protocols (v2-rwlock, slot-rwlock, global-spinlock, and any
 * user file that locks).  A lock is one int: either one of kmw_global's,
 * shared by every task (one cache line each, like a kernel global lock), or
 * the slot's own (memalloc_info.rwlock).
 *
 * The side that may wait forever on the watchdog passes c == NULL (the
 * allocating task: it spins, as the kernel's caller would); the watchdog
 * passes its read context, so that a stop request ends its wait
 * (returns 1, lock not taken).
 */
#ifndef KMW_LOCKS_H
#define KMW_LOCKS_H

#include "proto.h"

struct kmw_global {
	int rwlock __attribute__((aligned(KMW_CACHELINE)));
	int spinlock __attribute__((aligned(KMW_CACHELINE)));
};

/* The global locks of this library (one per compiled protocol module). */
extern struct kmw_global kmw_global;

#define KMW_QW_LOCKED	0x0ff	/* a writer holds it */
#define KMW_QW_WAITING	0x100	/* a writer waits: new readers hold back */
#define KMW_QW_WMASK	0x1ff
#define KMW_QR_BIAS	0x200	/* one reader */

/*
 * One pass of a wait for a lock; returns 1 if a stop request ended the wait
 * (only when c != NULL).  A wait on the slot's own lock is evidence that
 * this slot's write section overlapped the read; one on a global lock is
 * not (another slot's section may hold it).
 */
static inline int kmw_spin(struct kmw_rctx *c, const int *lock)
{
	if (!c) {
		cpu_relax();
		return 0;
	}
	if (lock != &kmw_global.rwlock && lock != &kmw_global.spinlock)
		c->evidence++;
	return kmw_spin_pass(c);
}

static inline int kmw_read_lock(int *lock, struct kmw_rctx *c)
{
	for (;;) {
		/* ACQUIRE: pairs with the RELEASE in kmw_write_unlock(). */
		int cnts = __atomic_add_fetch(lock, KMW_QR_BIAS, __ATOMIC_ACQUIRE);

		if (!(cnts & KMW_QW_WMASK))
			return 0;
		__atomic_sub_fetch(lock, KMW_QR_BIAS, __ATOMIC_RELAXED);
		while (READ_ONCE(*lock) & KMW_QW_WMASK)
			if (kmw_spin(c, lock))
				return 1;
	}
}

static inline void kmw_read_unlock(int *lock)
{
	/* RELEASE: the read side's accesses stay before it. */
	__atomic_sub_fetch(lock, KMW_QR_BIAS, __ATOMIC_RELEASE);
}

static inline int kmw_write_lock(int *lock, struct kmw_rctx *c)
{
	for (;;) {
		int v = READ_ONCE(*lock);

		/* ACQUIRE: pairs with the RELEASE of every unlock before it. */
		if (!(v & ~KMW_QW_WAITING) &&
		    __atomic_compare_exchange_n(lock, &v, KMW_QW_LOCKED, 0,
						__ATOMIC_ACQUIRE,
						__ATOMIC_RELAXED))
			return 0;
		if (!(v & KMW_QW_WAITING))
			__atomic_fetch_or(lock, KMW_QW_WAITING, __ATOMIC_RELAXED);
		if (kmw_spin(c, lock)) {
			__atomic_fetch_and(lock, ~KMW_QW_WAITING, __ATOMIC_RELAXED);
			return 1;
		}
	}
}

static inline void kmw_write_unlock(int *lock)
{
	/*
	 * RELEASE: pairs with the ACQUIRE of the next lock.  As the kernel's
	 * qrwlock does, only the writer byte (the lock word's low byte; the
	 * readers' counts live above it) is cleared, with a plain store-release
	 * rather than a locked read-modify-write.
	 */
	_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
		       "the writer byte is the lock word's first byte");
	__atomic_store_n((unsigned char *)lock, 0, __ATOMIC_RELEASE);
}

static inline int kmw_spin_lock(int *lock, struct kmw_rctx *c)
{
	for (;;) {
		/* ACQUIRE: pairs with the RELEASE in kmw_spin_unlock(). */
		if (!__atomic_exchange_n(lock, 1, __ATOMIC_ACQUIRE))
			return 0;
		while (READ_ONCE(*lock))
			if (kmw_spin(c, lock))
				return 1;
	}
}

static inline void kmw_spin_unlock(int *lock)
{
	/* RELEASE: the critical section stays before it. */
	__atomic_store_n(lock, 0, __ATOMIC_RELEASE);
}

#endif /* KMW_LOCKS_H */
