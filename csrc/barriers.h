/*
 * barriers.h - the kernel's barrier vocabulary, mapped to C11 atomics.
 *
 * Every name below is a real C11 fence or atomic access (GCC's __atomic
 * builtins, which is what <stdatomic.h> expands to), never nothing.  The
 * comment after each says what it compiles to on x86-64 and on arm64.
 *
 * C11 has no store-store-only or load-load-only fence, so smp_wmb() and
 * smp_rmb() map to the release and acquire fences, which order a little
 * more than the kernel's (x86-64: the same nothing; arm64: "dmb ish" /
 * "dmb ishld" where the kernel uses "dmb ishst" / "dmb ishld").
 *
 * In the C11 model a fence orders only atomic accesses, while the kernel-
 * style protocols order plain ones with it, as the kernel does.  That holds
 * here because GCC (and clang) treat every non-relaxed fence as a full
 * compiler barrier and emit the hardware fence above: the model the kernel
 * relies on (Documentation/memory-barriers.txt), not ISO C's.  The c11
 * variant is the one that is also correct by the ISO C rules.
 */
#ifndef KMW_BARRIERS_H
#define KMW_BARRIERS_H

#include <stdatomic.h>

/* Compiler-only barrier.  x86-64: nothing.  arm64: nothing. */
#define barrier()		atomic_signal_fence(memory_order_seq_cst)

/* Full barrier.  x86-64: mfence (GCC 12 emits "lock orq $0,(%rsp)", an
 * equivalent full barrier).  arm64: dmb ish. */
#define smp_mb()		atomic_thread_fence(memory_order_seq_cst)

/*
 * Store-store barrier.  x86-64: nothing but a compiler barrier (TSO keeps
 * stores in order).  arm64: dmb ish (the kernel uses dmb ishst).
 */
#define smp_wmb()		atomic_thread_fence(memory_order_release)

/*
 * Load-load barrier.  x86-64: nothing but a compiler barrier (TSO keeps
 * loads in order).  arm64: dmb ishld.
 */
#define smp_rmb()		atomic_thread_fence(memory_order_acquire)

/* Single, untorn, not-elided load.  x86-64: mov.  arm64: ldr. */
#define READ_ONCE(x)		__atomic_load_n(&(x), __ATOMIC_RELAXED)

/* Single, untorn, not-elided store.  x86-64: mov.  arm64: str. */
#define WRITE_ONCE(x, v)	__atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

/* Load-acquire.  x86-64: mov.  arm64: ldar. */
#define smp_load_acquire(p)	__atomic_load_n((p), __ATOMIC_ACQUIRE)

/* Store-release.  x86-64: mov.  arm64: stlr. */
#define smp_store_release(p, v)	__atomic_store_n((p), (v), __ATOMIC_RELEASE)

/* Spin-wait hint.  x86-64: pause.  arm64: yield. */
#if defined(__x86_64__) || defined(__i386__)
#define cpu_relax()		__builtin_ia32_pause()
#elif defined(__aarch64__)
#define cpu_relax()		__asm__ __volatile__("yield" ::: "memory")
#else
#define cpu_relax()		barrier()
#endif

#endif /* KMW_BARRIERS_H */
