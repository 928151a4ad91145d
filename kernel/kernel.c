/*
 * kernel.c — a tiny x86-64 kernel that runs heaplab's three allocators on its
 * own page frames, to show that vendor/ is what a kernel can use as it is.
 *
 *   boot.S                multiboot entry, page tables (4 GiB, 2 MiB pages), long mode
 *   serial                COM1, 115200 8N1: every line the host reads
 *   frames                the page-frame allocator: 4 KiB frames of one region of
 *                         RAM from the boot loader's memory map, as a sorted list of
 *                         free runs, handed out by the arena page source's rule
 *                         (native/pages/arena.c), so that each allocator makes the
 *                         decisions it makes on the host and in its port
 *   hooks                 alloc_page/free_page over the frames; lock/unlock a
 *                         spinlock taken with interrupts off
 *   traces                heaplab's seeded traces and a recorded one, in a blob
 *                         the host made (scripts/kernel.mjs), replayed op by op as
 *                         native/replay/replay.h's hl_replay_step does
 *
 * Per allocator and trace it prints one line: failures, the checker's broken
 * invariants, and a digest (FNV-1a 64) of every operation's result offset,
 * which the host compares with its own replay's (test/kernel.test.ts). Then it
 * leaves QEMU through isa-debug-exit: status 0 if every checker was clean.
 *
 * Build with -DHL_KERNEL_BROKEN_FRAMES for a page-frame allocator that hands a
 * run out twice: the allocators' checkers must then report broken heaps.
 */
#include <stddef.h>
#include <stdint.h>

#include "../native/allocator.h"

/* ---- the two libc functions vendor/ needs (vendor/libc.h) ---------------------- */

/* rep stosb / rep movsb: the CPU's own fast string moves (a byte loop made the
 * big-block traces crawl: they clear and copy megabytes per operation). */
void *memset(void *dst, int c, size_t n) {
    void *d = dst;
    __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
    return dst;
}

void *memcpy(void *restrict dst, const void *restrict src, size_t n) {
    void *d = dst;
    __asm__ volatile("rep movsb" : "+D"(d), "+S"(src), "+c"(n) : : "memory");
    return dst;
}

/* ---- ports and the serial line --------------------------------------------------- */

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) {
    uint8_t v;
    __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
    return v;
}

enum { COM1 = 0x3F8, DEBUG_EXIT = 0xF4 };

static void serial_init(void) {
    outb(COM1 + 1, 0x00);   /* no interrupts */
    outb(COM1 + 3, 0x80);   /* divisor latch */
    outb(COM1 + 0, 0x01);   /* 115200 baud */
    outb(COM1 + 1, 0x00);
    outb(COM1 + 3, 0x03);   /* 8N1 */
    outb(COM1 + 2, 0xC7);   /* FIFO */
}

static void putc_serial(char c) {
    while (!(inb(COM1 + 5) & 0x20)) {}
    outb(COM1, (uint8_t)c);
}

static void puts_serial(const char *s) {
    while (*s) putc_serial(*s++);
}

static void put_u64(uint64_t v) {
    char buf[24];
    int i = 0;
    do buf[i++] = (char)('0' + v % 10); while ((v /= 10));
    while (i) putc_serial(buf[--i]);
}

static void put_hex(uint64_t v) {
    for (int i = 60; i >= 0; i -= 4) putc_serial("0123456789abcdef"[(v >> i) & 15]);
}

static void halt(int status) {
    outb(DEBUG_EXIT, (uint8_t)status); /* QEMU exits with (status << 1) | 1 */
    for (;;) __asm__ volatile("cli; hlt");
}

/* ---- the lock: a spinlock held with interrupts off ----------------------------- */

typedef struct { volatile int held; uint64_t flags; } kspin;

static void lock_hook(void *ctx) {
    kspin *l = ctx;
    uint64_t flags;
    __asm__ volatile("pushfq; popq %0; cli" : "=r"(flags) : : "memory");
    while (__atomic_exchange_n(&l->held, 1, __ATOMIC_ACQUIRE)) __asm__ volatile("pause");
    l->flags = flags;
}

static void unlock_hook(void *ctx) {
    kspin *l = ctx;
    uint64_t flags = l->flags;
    __atomic_store_n(&l->held, 0, __ATOMIC_RELEASE);
    if (flags & (1u << 9)) __asm__ volatile("sti" : : : "memory");
}

/* ---- page frames ------------------------------------------------------------------ */

/* One region of 4 KiB frames: frame 0 is never handed out (offset 0 is NULL, as in
 * the arena); free runs kept sorted by first frame, neighbours always merged;
 * alloc takes the first n frames of the lowest run of at least n, and clears
 * what an earlier owner may have written (below the high water). */
enum { FRAME = 4096, MAX_RUNS = 8192 };
#define REGION_ALIGN ((uint64_t)1 << 30) /* offsets keep their addresses' alignment, as the host's 4 GiB-aligned arena */

typedef struct { uint64_t first, count; } run;

static struct {
    unsigned char *base;
    uint64_t frames, limit, bytes_out, high_water;
    run runs[MAX_RUNS];
    uint64_t run_count;
    uint64_t calls;
    void *last_run; /* the broken build hands this out again */
    uint64_t last_pages;
    int overflow;
} fr;

/* The region new again for the next heap, as hl_arena_pages_reset makes it: every
 * byte below the high water cleared (pages above it were never written). */
static void frames_reset(uint64_t limit) {
    memset(fr.base, 0, fr.high_water);
    fr.limit = limit;
    fr.bytes_out = 0;
    fr.high_water = 0;
    fr.runs[0].first = 1;
    fr.runs[0].count = fr.frames - 1;
    fr.run_count = 1;
    fr.calls = 0;
    fr.last_run = 0;
}

static void *alloc_page_hook(void *ctx, size_t pages) {
    (void)ctx;
    uint64_t bytes = (uint64_t)pages * FRAME;
    if (pages == 0 || pages > fr.frames) return NULL;
    if (fr.limit && (bytes > fr.limit || fr.bytes_out > fr.limit - bytes)) return NULL;
#ifdef HL_KERNEL_BROKEN_FRAMES
    /* every 5th call hands the previous run out again, while its owner still has it */
    if (++fr.calls % 5 == 0 && fr.last_run && fr.last_pages >= pages) return fr.last_run;
#endif
    for (uint64_t i = 0; i < fr.run_count; i++) {
        run *r = &fr.runs[i];
        if (r->count < pages) continue;
        uint64_t first = r->first;
        r->first += pages;
        r->count -= pages;
        if (r->count == 0) {
            for (uint64_t j = i; j + 1 < fr.run_count; j++) fr.runs[j] = fr.runs[j + 1];
            fr.run_count--;
        }
        fr.bytes_out += bytes;
        uint64_t start = first * FRAME, end = start + bytes;
        if (start < fr.high_water) memset(fr.base + start, 0, (end < fr.high_water ? end : fr.high_water) - start);
        if (end > fr.high_water) fr.high_water = end;
        fr.last_run = fr.base + start;
        fr.last_pages = pages;
        return fr.base + start;
    }
    return NULL;
}

static void free_page_hook(void *ctx, void *start, size_t pages) {
    (void)ctx;
    if (!start || !pages) return;
    uint64_t first = (uint64_t)((unsigned char *)start - fr.base) / FRAME;
    uint64_t i = 0;
    while (i < fr.run_count && fr.runs[i].first < first) i++;
    int below = i > 0 && fr.runs[i - 1].first + fr.runs[i - 1].count == first;
    int above = i < fr.run_count && first + pages == fr.runs[i].first;
    if (below && above) {
        fr.runs[i - 1].count += pages + fr.runs[i].count;
        for (uint64_t j = i; j + 1 < fr.run_count; j++) fr.runs[j] = fr.runs[j + 1];
        fr.run_count--;
    } else if (below) {
        fr.runs[i - 1].count += pages;
    } else if (above) {
        fr.runs[i].first = first;
        fr.runs[i].count += pages;
    } else if (fr.run_count < MAX_RUNS) {
        for (uint64_t j = fr.run_count; j > i; j--) fr.runs[j] = fr.runs[j - 1];
        fr.runs[i].first = first;
        fr.runs[i].count = pages;
        fr.run_count++;
    } else {
        fr.overflow = 1; /* lost frames: reported as a broken run */
    }
    fr.bytes_out -= (uint64_t)pages * FRAME;
    if (fr.last_run == start) fr.last_run = 0;
}

/* ---- the boot loader's memory map --------------------------------------------------- */

typedef struct __attribute__((packed)) {
    uint32_t flags, mem_lower, mem_upper, boot_device, cmdline, mods_count, mods_addr;
    uint32_t syms[4];
    uint32_t mmap_length, mmap_addr;
} multiboot_info;

typedef struct __attribute__((packed)) {
    uint32_t size;
    uint64_t addr, len;
    uint32_t type;
} multiboot_mmap;

/* The first REGION_ALIGN-aligned run of `want` bytes of usable RAM, or 0. */
static uint64_t find_region(const multiboot_info *mbi, uint64_t want) {
    if (!(mbi->flags & (1u << 6))) return 0;
    uint64_t at = mbi->mmap_addr, end = at + mbi->mmap_length;
    while (at < end) {
        const multiboot_mmap *e = (const multiboot_mmap *)(uintptr_t)at;
        if (e->type == 1) {
            uint64_t lo = (e->addr + REGION_ALIGN - 1) & ~(REGION_ALIGN - 1);
            if (lo + want <= e->addr + e->len && lo + want <= ((uint64_t)4 << 30)) return lo;
        }
        at += e->size + 4;
    }
    return 0;
}

/* ---- traces ------------------------------------------------------------------------- */

/* The blob (scripts/kernel.mjs writes it, boot.S includes it): "HLKTRACE", u32
 * count, then per trace a header and its records. */
typedef struct { char name[32]; uint64_t limit; uint64_t ops; uint32_t max_id; uint32_t pad; } trace_header;
typedef struct { uint8_t op, align_log2, pad[2]; uint32_t id; uint64_t size; } trace_record;
_Static_assert(sizeof(trace_header) == 56, "the blob's trace header is 56 bytes");
_Static_assert(sizeof(trace_record) == 16, "the blob's record is 16 bytes");
extern const unsigned char trace_blob[], trace_blob_end[];
extern unsigned char kernel_end[];

enum { OP_MALLOC = 1, OP_CALLOC = 2, OP_MEMALIGN = 3, OP_REALLOC = 4, OP_FREE = 5 }; /* native/trace/trace.h */

static uint64_t fnv(uint64_t h, int64_t v) {
    for (int i = 0; i < 8; i++) {
        h ^= (uint64_t)v >> (8 * i) & 0xff;
        h *= 0x100000001b3ull;
    }
    return h;
}

/* One trace on a fresh heap of `a`: as hl_replay_step, with each result's offset hashed. */
static int run_trace(const hl_allocator *a, const trace_header *t, const trace_record *rec, void **ptr) {
    static kspin lock;
    frames_reset(t->limit);
    hl_hooks hooks = {&lock, FRAME, alloc_page_hook, free_page_hook, lock_hook, unlock_hook, NULL, NULL};
    for (uint64_t i = 0; i <= t->max_id; i++) ptr[i] = NULL;
    void *heap = a->create(&hooks);
    if (!heap) {
        puts_serial("heaplab-kernel ");
        puts_serial(a->name);
        puts_serial(" cannot create a heap\n");
        return 1;
    }
    uint64_t h = 0xcbf29ce484222325ull, failures = 0;
    for (uint64_t i = 0; i < t->ops; i++) {
        const trace_record *r = &rec[i];
        void *p = NULL;
        int64_t result;
        switch (r->op) {
            case OP_MALLOC: p = a->malloc(heap, r->size); break;
            case OP_CALLOC: p = a->calloc(heap, 1, r->size); break;
            case OP_MEMALIGN: p = a->memalign(heap, (size_t)1 << r->align_log2, r->size); break;
            case OP_REALLOC: p = a->realloc(heap, ptr[r->id], r->size); break;
            case OP_FREE:
                a->free(heap, ptr[r->id]);
                ptr[r->id] = NULL;
                h = fnv(h, 0);
                continue;
            default: continue;
        }
        if (!p) {
            failures++;
            result = -1; /* a failed realloc keeps the old block */
        } else {
            ptr[r->id] = p;
            result = (int64_t)((unsigned char *)p - fr.base);
        }
        h = fnv(h, result);
    }
    size_t bad = a->check(heap);
    if (fr.overflow) bad++;
    puts_serial("heaplab-kernel ");
    puts_serial(a->name);
    putc_serial(' ');
    puts_serial(t->name);
    puts_serial(" ops=");
    put_u64(t->ops);
    puts_serial(" failures=");
    put_u64(failures);
    puts_serial(" invariants=");
    put_u64(bad);
    puts_serial(" digest=");
    put_hex(h);
    putc_serial('\n');
    for (uint64_t i = 0; i <= t->max_id; i++)
        if (ptr[i]) a->free(heap, ptr[i]);
    a->destroy(heap);
    return bad != 0;
}

extern const hl_allocator hl_allocator_tlsf, hl_allocator_dlmalloc, hl_allocator_liballoc;

static int memcmp_magic(const unsigned char *p) {
    const char *magic = "HLKTRACE";
    for (int i = 0; i < 8; i++)
        if (p[i] != (unsigned char)magic[i]) return 1;
    return 0;
}

void kmain(const multiboot_info *mbi) {
    serial_init();
    puts_serial("heaplab-kernel boot\n");
    uint64_t want = (uint64_t)1 << 30; /* the host arena's 1 GiB */
    uint64_t base = find_region(mbi, want);
    if (!base) {
        puts_serial("heaplab-kernel no 1 GiB region of RAM at a 1 GiB boundary below 4 GiB (give QEMU -m 2304M)\n");
        halt(2);
    }
    fr.base = (unsigned char *)(uintptr_t)base;
    fr.frames = want / FRAME;
    /* the block tables of the replays: RAM after the kernel, below the region */
    void **ptr = (void **)(((uintptr_t)kernel_end + 4095) & ~(uintptr_t)4095);
    const unsigned char *at = trace_blob;
    if (trace_blob_end - trace_blob < 12 || memcmp_magic(at)) {
        puts_serial("heaplab-kernel the trace blob is missing\n");
        halt(2);
    }
    uint32_t count = *(const uint32_t *)(at + 8);
    at += 12;
    const hl_allocator *designs[] = {&hl_allocator_tlsf, &hl_allocator_dlmalloc, &hl_allocator_liballoc};
    int bad = 0, lines = 0;
    for (uint32_t k = 0; k < count; k++) {
        const trace_header *t = (const trace_header *)at;
        const trace_record *rec = (const trace_record *)(at + sizeof *t);
        if ((uintptr_t)(ptr + t->max_id + 1) > base) {
            puts_serial("heaplab-kernel a block table would not fit below the region\n");
            halt(2);
        }
        for (unsigned d = 0; d < 3; d++, lines++) {
            bad += run_trace(designs[d], t, rec, ptr);
#ifdef HL_KERNEL_BROKEN_FRAMES
            /* a heap the frames broke can loop forever on its next call: stop at the first report */
            if (bad) {
                puts_serial("heaplab-kernel stopped: a checker found the heap broken\n");
                halt(1);
            }
#endif
        }
        at += sizeof *t + t->ops * sizeof *rec;
    }
    puts_serial("heaplab-kernel done lines=");
    put_u64((uint64_t)lines);
    puts_serial(" broken=");
    put_u64((uint64_t)bad);
    putc_serial('\n');
    halt(bad ? 1 : 0);
}
