/*
 * trace.h — the binary trace format written by the preload libraries when
 * HEAPLAB_TRACE=FILE is set, and read back by lib/trace/file.ts. The prose version,
 * with the rules for ids, realloc, threads and child processes, is
 * docs/trace-format.md; this header and that page describe the same bytes.
 *
 * A trace file is one header followed by fixed-size records, all little-endian:
 *
 *   offset 0                 64                80                96
 *          +-----------------+-----------------+-----------------+----
 *          | hl_trace_header | hl_trace_record | hl_trace_record | ...
 *          +-----------------+-----------------+-----------------+----
 *
 *   hl_trace_record (16 bytes)
 *          0        4    5      6         8                 16
 *          +--------+----+------+---------+-----------------+
 *          | id u32 | op | alg2 | thread  |   size u64      |
 *          +--------+----+------+---------+-----------------+
 *
 * Block ids are assigned 0, 1, 2 … in the order blocks are allocated; a block
 * keeps its id through realloc, and an id is never reused. No record has op 0:
 * a file whose writer exec'd or was killed ends in zero bytes (the last window
 * of the file was not cut to length), and a reader drops them, as well as a
 * partial record at the end.
 */
#ifndef HEAPLAB_TRACE_H
#define HEAPLAB_TRACE_H

#include <stdint.h>

#define HL_TRACE_MAGIC "HLTRACE" /* 7 characters and a NUL: 8 bytes */
enum { HL_TRACE_VERSION = 1 };

/* Operations. `size` and `align_log2` mean, per op:
 *  MALLOC    new block `id` of `size` bytes            (malloc, realloc(NULL, n))
 *  CALLOC    new zeroed block `id` of `size` bytes      (size = count * size)
 *  MEMALIGN  new block `id` of `size` bytes aligned to 1 << align_log2
 *            (memalign, posix_memalign, aligned_alloc, valloc, pvalloc)
 *  REALLOC   block `id` now has `size` bytes (it keeps its id, wherever it moved)
 *  FREE      block `id` is freed (free, realloc(p, 0)); size is 0
 * align_log2 is 4 (16 bytes, the guaranteed alignment) for every op but MEMALIGN.
 * Failed calls (NULL result) are not recorded. */
enum hl_trace_op {
    HL_TRACE_MALLOC = 1,
    HL_TRACE_CALLOC = 2,
    HL_TRACE_MEMALIGN = 3,
    HL_TRACE_REALLOC = 4,
    HL_TRACE_FREE = 5,
};

typedef struct hl_trace_header {
    char     magic[8];        /* HL_TRACE_MAGIC, NUL-padded                        */
    uint32_t version;         /* HL_TRACE_VERSION                                  */
    uint32_t record_size;     /* sizeof(hl_trace_record): 16                       */
    uint32_t pid;             /* the process that wrote the file                   */
    uint32_t ppid;            /* its parent at the start of recording              */
    uint32_t flags;           /* HL_TRACE_FLAG_*                                   */
    uint32_t reserved;        /* 0                                                 */
    char     allocator[16];   /* "tlsf", "dlmalloc", "liballoc", NUL-padded        */
    char     program[16];     /* the program's short name, NUL-padded, cut at 15   */
} hl_trace_header;

enum {
    /* the file is FILE.<pid> of a descendant of the traced program */
    HL_TRACE_FLAG_DESCENDANT = 1,
};

typedef struct hl_trace_record {
    uint32_t id;          /* block id                                              */
    uint8_t  op;          /* enum hl_trace_op                                      */
    uint8_t  align_log2;  /* log2 of the alignment asked for                       */
    uint16_t thread;      /* 0 for the first thread that allocated, 1 for the next…
                             (65535 for every thread past 65534)                  */
    uint64_t size;        /* bytes asked for                                       */
} hl_trace_record;

#ifdef __cplusplus /* the addon includes this header for the op codes */
static_assert(sizeof(hl_trace_header) == 64, "trace header is 64 bytes");
static_assert(sizeof(hl_trace_record) == 16, "trace record is 16 bytes");
#else
_Static_assert(sizeof(hl_trace_header) == 64, "trace header is 64 bytes");
_Static_assert(sizeof(hl_trace_record) == 16, "trace record is 16 bytes");
#endif

#endif
