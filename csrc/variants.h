/*
 * variants.h - protocols.md's table of variants, once: each protocol id
 * with its user-facing name, its writer (the prefix of its
 * *_start_memalloc_timer / *_stop_memalloc_timer) and its reader.  The C
 * loops (protocols.c, bench.c) instantiate themselves from it.
 */
#ifndef KMW_VARIANTS_H
#define KMW_VARIANTS_H

#include "readers.h"
#include "writer_seq.h"
#include "writer_nowmb.h"
#include "writer_lock.h"
#include "writer_c11.h"

/* variant, name, writer prefix, reader function */
#define KMW_VARIANTS(X)							\
	X(KMW_V2_RWLOCK,	 "v2-rwlock",	     wlock,  rlock_read)	\
	X(KMW_V3,		 "v3",		     wseq,   rv3_read)		\
	X(KMW_V4_PARITY,	 "v4-parity",	     wseq,   rv4_read)		\
	X(KMW_SEQCOUNT,		 "seqcount",	     wseq,   rseqcount_read)	\
	X(KMW_SEQCOUNT_ACQUIRE,	 "seqcount-acquire", wseq,   racquire_read)	\
	X(KMW_C11,		 "c11",		     wc11,   rc11_read)		\
	X(KMW_NO_WMB,		 "no-wmb",	     wnowmb, rseqcount_read)	\
	X(KMW_NO_RMB,		 "no-rmb",	     wseq,   rnormb_read)	\
	X(KMW_NONE,		 "none",	     wseq,   rnone_read)

#endif
