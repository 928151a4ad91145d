/*
 * trace/writer.c — records malloc-family calls in the format of native/trace/trace.h
 * (see docs/trace-format.md). Linked into each preload library; never calls
 * malloc, never uses stdio.
 */
#define _GNU_SOURCE
#include "writer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "../pages/spinlock.h"

/* The file is written through a shared mapping of this many bytes of it at a
 * time: records are in the page cache as soon as they are stored, so they
 * survive exec(), _exit() and kill -9, which run no destructor. The file grows
 * window by window (ftruncate) and is cut to its real length at exit; a file left
 * longer (the process exec'd or was killed) ends in zero records, which readers
 * drop (no record has op 0). */
enum { TRACE_WINDOW_BYTES = 4 << 20 };
_Static_assert(TRACE_WINDOW_BYTES % sizeof(hl_trace_record) == 0, "records never straddle windows");
_Static_assert(sizeof(hl_trace_header) % sizeof(hl_trace_record) == 0, "records are aligned in the file");
/* First size of the pointer -> id table (slots; a power of two); it doubles when
 * half full. */
enum { TRACE_MAP_INITIAL_SLOTS = 64 * 1024 };
/* The id a lookup returns for a pointer that is not in the table. */
#define TRACE_NO_ID UINT32_MAX

typedef struct trace_slot {
    uintptr_t key;   /* the block's address; 0 = empty slot */
    uint32_t  id;
    uint32_t  unused;
} trace_slot;

static struct {
    hl_spinlock      lock;
    int              fd;             /* -1 when not recording                 */
    char            *window;         /* TRACE_WINDOW_BYTES of the file        */
    uint64_t         window_start;   /* its offset in the file                */
    size_t           used;           /* bytes of the window written           */
    trace_slot      *slots;
    size_t           slot_count;     /* a power of two                        */
    size_t           slot_shift;     /* 64 - log2(slot_count)                 */
    size_t           live;           /* occupied slots                        */
    uint32_t         next_id;
    uint32_t         next_thread;
} T = { .fd = -1 };

atomic_int hl_trace_on;

/* Thread index + 1 (0: not yet assigned). initial-exec TLS: no allocation. */
static __thread uint32_t t_thread_plus1;

/* ---- the pointer -> id table: open addressing, linear probing ------------ */

static size_t slot_home(uintptr_t key) {
    return (size_t)(((uint64_t)(key >> 4) * 0x9E3779B97F4A7C15ull) >> T.slot_shift);
}

static int map_alloc(size_t count, trace_slot **out) {
    void *m = mmap(NULL, count * sizeof(trace_slot), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return -1;
    *out = m;
    return 0;
}

static size_t log2_of(size_t x) {
    size_t n = 0;
    while (x > 1) { x >>= 1; n++; }
    return n;
}

static void map_insert_slot(trace_slot *slots, size_t mask, size_t shift, uintptr_t key, uint32_t id) {
    size_t i = (size_t)(((uint64_t)(key >> 4) * 0x9E3779B97F4A7C15ull) >> shift);
    while (slots[i].key) i = (i + 1) & mask;
    slots[i].key = key;
    slots[i].id = id;
}

static int map_grow(void) {
    size_t count = T.slot_count * 2;
    trace_slot *slots;
    if (map_alloc(count, &slots)) return -1;
    size_t shift = 64 - log2_of(count);
    for (size_t i = 0; i < T.slot_count; i++)
        if (T.slots[i].key) map_insert_slot(slots, count - 1, shift, T.slots[i].key, T.slots[i].id);
    munmap(T.slots, T.slot_count * sizeof(trace_slot));
    T.slots = slots;
    T.slot_count = count;
    T.slot_shift = shift;
    return 0;
}

static int map_put(const void *p, uint32_t id) {
    if ((T.live + 1) * 2 > T.slot_count && map_grow()) return -1;
    map_insert_slot(T.slots, T.slot_count - 1, T.slot_shift, (uintptr_t)p, id);
    T.live++;
    return 0;
}

/* Removes p and returns its id, or TRACE_NO_ID. Deletion shifts the following
 * run back, so there are no tombstones. */
static uint32_t map_take(const void *p) {
    uintptr_t key = (uintptr_t)p;
    size_t mask = T.slot_count - 1;
    size_t i = slot_home(key);
    while (T.slots[i].key != key) {
        if (!T.slots[i].key) return TRACE_NO_ID;
        i = (i + 1) & mask;
    }
    uint32_t id = T.slots[i].id;
    size_t hole = i;
    for (size_t j = (i + 1) & mask; T.slots[j].key; j = (j + 1) & mask) {
        size_t home = slot_home(T.slots[j].key);
        /* slot j may move into the hole if its home is not in (hole, j] */
        int stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!stays) {
            T.slots[hole] = T.slots[j];
            hole = j;
        }
    }
    T.slots[hole].key = 0;
    T.live--;
    return id;
}

/* ---- the file window ------------------------------------------------------ */

static void trace_stop(void) {
    atomic_store_explicit(&hl_trace_on, 0, memory_order_relaxed);
}

static char *map_window(int fd, uint64_t start) {
    if (ftruncate(fd, (off_t)(start + TRACE_WINDOW_BYTES))) return NULL;
    void *m = mmap(NULL, TRACE_WINDOW_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)start);
    return m == MAP_FAILED ? NULL : m;
}

/* Moves to the next window; keeps the program's errno. */
static int next_window(void) {
    int saved = errno;
    uint64_t start = T.window_start + TRACE_WINDOW_BYTES;
    char *m = map_window(T.fd, start);
    munmap(T.window, TRACE_WINDOW_BYTES);
    T.window = m;
    T.window_start = start;
    T.used = 0;
    errno = saved;
    if (!m) {
        trace_stop();
        return -1;
    }
    return 0;
}

static uint16_t thread_index(void) {
    if (!t_thread_plus1) t_thread_plus1 = ++T.next_thread;
    uint32_t t = t_thread_plus1 - 1;
    return (uint16_t)(t < 65535 ? t : 65535);
}

static void emit(uint32_t id, int op, size_t align, size_t size) {
    if (T.used == TRACE_WINDOW_BYTES && next_window()) return;
    hl_trace_record *r = (hl_trace_record *)(T.window + T.used);
    T.used += sizeof(hl_trace_record);
    r->id = id;
    r->op = (uint8_t)op;
    r->align_log2 = (uint8_t)log2_of(align);
    r->thread = thread_index();
    r->size = size;
}

static uint32_t new_id(const void *p) {
    if (T.next_id == TRACE_NO_ID) { trace_stop(); return TRACE_NO_ID; }
    uint32_t id = T.next_id;
    if (map_put(p, id)) { trace_stop(); return TRACE_NO_ID; }
    T.next_id++;
    return id;
}

/* ---- the interface --------------------------------------------------------- */

void hl_trace_lock(void) { hl_spin_lock(&T.lock); }
void hl_trace_unlock(void) { hl_spin_unlock(&T.lock); }

void hl_trace_alloc(int op, const void *p, size_t size, size_t align) {
    if (!hl_trace_active()) return;
    uint32_t id = new_id(p);
    if (id != TRACE_NO_ID) emit(id, op, align, size);
}

void hl_trace_free(const void *p) {
    if (!hl_trace_active()) return;
    uint32_t id = map_take(p);
    if (id != TRACE_NO_ID) emit(id, HL_TRACE_FREE, 16, 0);
}

void hl_trace_realloc(const void *old, const void *q, size_t size) {
    if (!hl_trace_active()) return;
    uint32_t id = map_take(old);
    if (id == TRACE_NO_ID) {
        hl_trace_alloc(HL_TRACE_MALLOC, q, size, 16);
        return;
    }
    if (map_put(q, id)) { trace_stop(); return; }
    emit(id, HL_TRACE_REALLOC, 16, size);
}

void hl_trace_finish(void) {
    hl_trace_lock();
    if (T.fd >= 0) {
        int saved = errno;
        trace_stop();
        if (T.window) munmap(T.window, TRACE_WINDOW_BYTES);
        T.window = NULL;
        if (ftruncate(T.fd, (off_t)(T.window_start + T.used))) { /* readers drop zero records */ }
        close(T.fd);
        T.fd = -1;
        errno = saved;
    }
    hl_trace_unlock();
}

static void copy_name(char *out, size_t cap, const char *name) {
    size_t n = name ? strlen(name) : 0;
    if (n > cap - 1) n = cap - 1;
    if (n) memcpy(out, name, n);
}

int hl_trace_start(const char *path, int descendant, const char *allocator, const char *program) {
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return errno;
    char *window = map_window(fd, 0);
    trace_slot *slots = NULL;
    if (!window || map_alloc(TRACE_MAP_INITIAL_SLOTS, &slots)) {
        int err = errno;
        if (window) munmap(window, TRACE_WINDOW_BYTES);
        if (ftruncate(fd, 0)) { /* nothing more to undo */ }
        close(fd);
        return err;
    }
    hl_trace_header *h = (hl_trace_header *)window;  /* the file reads as zeros */
    memcpy(h->magic, HL_TRACE_MAGIC, sizeof HL_TRACE_MAGIC);
    h->version = HL_TRACE_VERSION;
    h->record_size = sizeof(hl_trace_record);
    h->pid = (uint32_t)getpid();
    h->ppid = (uint32_t)getppid();
    h->flags = descendant ? HL_TRACE_FLAG_DESCENDANT : 0;
    copy_name(h->allocator, sizeof h->allocator, allocator);
    copy_name(h->program, sizeof h->program, program);
    hl_trace_lock();
    T.fd = fd;
    T.window = window;
    T.window_start = 0;
    T.used = sizeof(hl_trace_header);
    T.slots = slots;
    T.slot_count = TRACE_MAP_INITIAL_SLOTS;
    T.slot_shift = 64 - log2_of(TRACE_MAP_INITIAL_SLOTS);
    T.live = 0;
    T.next_id = 0;
    T.next_thread = 0;
    atomic_store_explicit(&hl_trace_on, 1, memory_order_relaxed);
    hl_trace_unlock();
    return 0;
}

/* Prepare: whether fork found recording on, so parent/child undo exactly it. */
static int fork_took_lock;

void hl_trace_fork_prepare(void) {
    fork_took_lock = T.fd >= 0;
    if (fork_took_lock) hl_trace_lock();
}

void hl_trace_fork_parent(void) {
    if (fork_took_lock) hl_trace_unlock();
}

void hl_trace_fork_child(void) {
    if (!fork_took_lock) return;
    /* the window is the parent's file, shared: let go of it without a word */
    trace_stop();
    if (T.window) munmap(T.window, TRACE_WINDOW_BYTES);
    T.window = NULL;
    close(T.fd);
    T.fd = -1;
    atomic_init(&T.lock.held, 0);
}
