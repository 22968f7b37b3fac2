/*
 * barriers.h - the kernel's barrier vocabulary, in one of two builds.
 *
 * The kernel build (the default) defines each name as Linux does on the
 * machine it is compiled for (arch/x86/include/asm/barrier.h,
 * arch/arm64/include/asm/barrier.h, include/asm-generic/rwonce.h), so that
 * GCC has the freedoms it has with kernel code: volatile READ_ONCE /
 * WRITE_ONCE, and on x86 smp_rmb()/smp_wmb() a compiler barrier and nothing
 * else, which orders plain accesses against each other only at the barrier.
 *
 * The C11 build (-DKMW_BUILD_C11) maps every name to a C11 fence or atomic
 * access (GCC's __atomic builtins), the mapping ThreadSanitizer understands.
 * GCC treats every non-relaxed fence as a full compiler barrier, so plain
 * accesses keep their order around smp_rmb()/smp_wmb() there: fewer
 * compiler freedoms than the kernel has.  C11 has no store-store-only or
 * load-load-only fence, so smp_wmb()/smp_rmb() become the release/acquire
 * fences (arm64: "dmb ish" / "dmb ishld" where the kernel uses "dmb ishst").
 *
 * KMW_BUILD_NAME names the build; `kmallocwd protocols --c` prints this
 * file's definitions for the build it shows.
 */
#ifndef KMW_BARRIERS_H
#define KMW_BARRIERS_H

#ifdef KMW_BUILD_C11
/* ---- the C11 build ------------------------------------------------------ */
#define KMW_BUILD_NAME		"c11"

#include <stdatomic.h>

/* Compiler-only barrier.  x86-64: nothing.  arm64: nothing. */
#define barrier()		atomic_signal_fence(memory_order_seq_cst)

/* Full barrier.  x86-64: "lock orq $0,(%rsp)" (GCC 12).  arm64: dmb ish. */
#define smp_mb()		atomic_thread_fence(memory_order_seq_cst)

/* Store-store barrier.  x86-64: a compiler barrier.  arm64: dmb ish. */
#define smp_wmb()		atomic_thread_fence(memory_order_release)

/* Load-load barrier.  x86-64: a compiler barrier.  arm64: dmb ishld. */
#define smp_rmb()		atomic_thread_fence(memory_order_acquire)

/* Single, untorn, not-elided load.  x86-64: mov.  arm64: ldr. */
#define READ_ONCE(x)		__atomic_load_n(&(x), __ATOMIC_RELAXED)

/* Single, untorn, not-elided store.  x86-64: mov.  arm64: str. */
#define WRITE_ONCE(x, v)	__atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

/* Load-acquire.  x86-64: mov.  arm64: ldar. */
#define smp_load_acquire(p)	__atomic_load_n((p), __ATOMIC_ACQUIRE)

/* Store-release.  x86-64: mov.  arm64: stlr. */
#define smp_store_release(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELEASE)

#else
/* ---- the kernel build --------------------------------------------------- */
#define KMW_BUILD_NAME		"kernel"

/* Compiler-only barrier (include/linux/compiler-gcc.h). */
#define barrier()		__asm__ __volatile__("" ::: "memory")

/*
 * A volatile access: one load or store of the whole field, never elided,
 * never merged with another volatile one; plain accesses may still move
 * across it.  (include/asm-generic/rwonce.h, without the size checks.)
 */
#define READ_ONCE(x)		(*(const volatile __typeof__(x) *)&(x))
#define WRITE_ONCE(x, v)	do {					\
	*(volatile __typeof__(x) *)&(x) = (v);				\
} while (0)

#if defined(__x86_64__)
/*
 * x86-64 is TSO: loads are not reordered with loads nor stores with
 * stores, so the read and write barriers only have to stop the compiler.
 * The full barrier is a locked add to the stack, cheaper than mfence and
 * as strong for ordinary memory.
 */
#define smp_mb()	__asm__ __volatile__("lock; addl $0,-4(%%rsp)" \
					     ::: "memory", "cc")
#define smp_rmb()	barrier()
#define smp_wmb()	barrier()

/* A TSO load is an acquire and a TSO store a release: only the compiler
 * has to keep later accesses after the load, earlier ones before the store. */
#define smp_load_acquire(p) ({						\
	__typeof__(*(p)) ___p1 = READ_ONCE(*(p));			\
	barrier();							\
	___p1;								\
})
#define smp_store_release(p, v) do {					\
	barrier();							\
	WRITE_ONCE(*(p), (v));						\
} while (0)

#elif defined(__aarch64__)
/* arm64: the barriers are dmb in the inner-shareable domain. */
#define smp_mb()	__asm__ __volatile__("dmb ish" ::: "memory")
#define smp_rmb()	__asm__ __volatile__("dmb ishld" ::: "memory")
#define smp_wmb()	__asm__ __volatile__("dmb ishst" ::: "memory")

/* ldar/stlr of the access's size (the fields here are 1, 4 or 8 bytes). */
#define smp_load_acquire(p) ({						\
	union { __typeof__(*(p)) __val; unsigned long __l; } __u;	\
	switch (sizeof(*(p))) {						\
	case 1:								\
		__asm__ __volatile__("ldarb %w0, %1" : "=r"(__u.__l)	\
				     : "Q"(*(p)) : "memory");		\
		break;							\
	case 2:								\
		__asm__ __volatile__("ldarh %w0, %1" : "=r"(__u.__l)	\
				     : "Q"(*(p)) : "memory");		\
		break;							\
	case 4:								\
		__asm__ __volatile__("ldar %w0, %1" : "=r"(__u.__l)	\
				     : "Q"(*(p)) : "memory");		\
		break;							\
	default:							\
		__asm__ __volatile__("ldar %0, %1" : "=r"(__u.__l)	\
				     : "Q"(*(p)) : "memory");		\
	}								\
	__u.__val;							\
})
#define smp_store_release(p, v) do {					\
	unsigned long __s = (unsigned long)(v);				\
	switch (sizeof(*(p))) {						\
	case 1:								\
		__asm__ __volatile__("stlrb %w1, %0" : "=Q"(*(p))	\
				     : "r"(__s) : "memory");		\
		break;							\
	case 2:								\
		__asm__ __volatile__("stlrh %w1, %0" : "=Q"(*(p))	\
				     : "r"(__s) : "memory");		\
		break;							\
	case 4:								\
		__asm__ __volatile__("stlr %w1, %0" : "=Q"(*(p))	\
				     : "r"(__s) : "memory");		\
		break;							\
	default:							\
		__asm__ __volatile__("stlr %1, %0" : "=Q"(*(p))	\
				     : "r"(__s) : "memory");		\
	}								\
} while (0)

#else
#error "the kernel build knows x86-64 and arm64; build with -DKMW_BUILD_C11 elsewhere"
#endif
#endif /* KMW_BUILD_C11 */

/* Spin-wait hint.  x86-64: pause.  arm64: yield. */
#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax()		__builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax()		__asm__ __volatile__("yield" ::: "memory")
#else
#define cpu_relax()		barrier()
#endif

#endif /* KMW_BARRIERS_H */
