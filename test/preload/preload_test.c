/*
 * preload_test.c — the malloc family as a program sees it, run under each
 * libheaplab-NAME.so with LD_PRELOAD (test/preload.test.ts), and on plain glibc
 * as a check of the checks. Built without sanitizers (preload.cmake), with
 * -fno-builtin so the compiler cannot fold a malloc/free pair away.
 *
 *   heaplab-preload-test          all checks; last line "preload_test: P passed, F failed"
 *   heaplab-preload-test trace    a fixed sequence of calls for the trace test
 *
 * Checks that only hold for heaplab (glibc 2.36 differs or would crash) run when
 * malloc resolves into a libheaplab-*.so.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/* The checks ask for impossible sizes and reuse a pointer after a failed
 * reallocarray on purpose. */
#pragma GCC diagnostic ignored "-Walloc-size-larger-than="
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic ignored "-Wuse-after-free"
#endif

static int passed, failed;

#define CHECK(cond, ...)                                                        \
    do {                                                                        \
        if (cond) passed++;                                                     \
        else {                                                                  \
            failed++;                                                           \
            printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);              \
            printf(__VA_ARGS__);                                                \
            printf("\n");                                                       \
        }                                                                       \
    } while (0)

static int under_heaplab;

static int aligned(const void *p, size_t a) { return ((uintptr_t)p & (a - 1)) == 0; }

static void check_malloc(void) {
    void *z = malloc(0);
    CHECK(z != NULL, "malloc(0) returned NULL");
    free(z);
    free(NULL);
    passed++;  /* free(NULL) returned */
    size_t bad = 0;
    for (size_t n = 1; n < 5000; n += 7) {
        unsigned char *p = malloc(n);
        if (!p || !aligned(p, 16)) bad++;
        else {
            memset(p, 0xAB, n);
            if (malloc_usable_size(p) < n) bad++;
        }
        free(p);
    }
    CHECK(bad == 0, "%zu of the blocks 1..5000 were NULL, unaligned or short", bad);
    errno = 0;
    void *huge = malloc((size_t)PTRDIFF_MAX + 1);
    CHECK(huge == NULL && errno == ENOMEM, "malloc(PTRDIFF_MAX + 1) = %p, errno %d", huge, errno);
    errno = 0;
    huge = malloc(SIZE_MAX);
    CHECK(huge == NULL && errno == ENOMEM, "malloc(SIZE_MAX) = %p, errno %d", huge, errno);
    CHECK(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL) != 0");
}

static void check_calloc(void) {
    errno = 0;
    void *p = calloc(SIZE_MAX / 2, 3);
    CHECK(p == NULL && errno == ENOMEM, "calloc overflow = %p, errno %d", p, errno);
    errno = 0;
    p = calloc((size_t)1 << 32, (size_t)1 << 32);
    CHECK(p == NULL && errno == ENOMEM, "calloc 2^32 * 2^32 = %p, errno %d", p, errno);
    errno = 0;
    p = calloc(1, (size_t)PTRDIFF_MAX + 1);
    CHECK(p == NULL && errno == ENOMEM, "calloc(1, PTRDIFF_MAX + 1) = %p, errno %d", p, errno);
    /* dirty blocks, freed, then calloc of the same sizes must read zero */
    size_t nonzero = 0;
    for (size_t round = 0; round < 50; round++) {
        size_t n = 16 + round * 97;
        unsigned char *d = malloc(n);
        memset(d, 0xFF, n);
        free(d);
        unsigned char *c = calloc(1, n);
        for (size_t i = 0; i < n; i++) nonzero += c[i] != 0;
        free(c);
    }
    CHECK(nonzero == 0, "calloc returned %zu non-zero bytes", nonzero);
    p = calloc(0, 10);
    CHECK(p != NULL, "calloc(0, 10) returned NULL");
    free(p);
}

static void check_posix_memalign(void) {
    void *sentinel = (void *)0x5A5A5A5A;
    void *out = sentinel;
    int rc = posix_memalign(&out, 3, 16);
    CHECK(rc == EINVAL && out == sentinel, "posix_memalign(align 3) = %d, out %p", rc, out);
    rc = posix_memalign(&out, 4, 16);
    CHECK(rc == EINVAL && out == sentinel, "posix_memalign(align 4) = %d, out %p", rc, out);
    rc = posix_memalign(&out, 0, 16);
    CHECK(rc == EINVAL && out == sentinel, "posix_memalign(align 0) = %d, out %p", rc, out);
    rc = posix_memalign(&out, 24, 16);
    CHECK(rc == EINVAL && out == sentinel, "posix_memalign(align 24) = %d, out %p", rc, out);
    rc = posix_memalign(&out, 64, SIZE_MAX - 1000);
    CHECK(rc == ENOMEM && out == sentinel, "posix_memalign(huge) = %d, out %p", rc, out);
    rc = posix_memalign(&out, 64, (size_t)PTRDIFF_MAX);
    CHECK(rc == ENOMEM && out == sentinel, "posix_memalign(PTRDIFF_MAX) = %d, out %p", rc, out);
    size_t bad = 0;
    for (size_t a = sizeof(void *); a <= ((size_t)1 << 20); a <<= 1) {
        for (size_t n = 0; n < 3000; n += 1000) {
            void *p = NULL;
            rc = posix_memalign(&p, a, n);
            if (rc || !p || !aligned(p, a)) bad++;
            else memset(p, 0x11, n);
            free(p);
        }
    }
    CHECK(bad == 0, "%zu posix_memalign results failed or were misaligned", bad);
}

static void check_memalign(void) {
    size_t bad = 0;
    void *keep[64];
    size_t kept = 0;
    for (size_t a = 16; a <= ((size_t)1 << 20); a <<= 1) {
        size_t sizes[] = { 1, 100, a, 3 * a + 5 };
        for (size_t i = 0; i < 4; i++) {
            unsigned char *p = memalign(a, sizes[i]);
            if (!p || !aligned(p, a) || malloc_usable_size(p) < sizes[i]) bad++;
            else {
                memset(p, 0x22, sizes[i]);
                p[0] = 1;
            }
            if (kept < 64 && i == 1) keep[kept++] = p;
            else free(p);
        }
        unsigned char *q = aligned_alloc(a, 2 * a);
        if (!q || !aligned(q, a)) bad++;
        free(q);
    }
    for (size_t i = 0; i < kept; i++) free(keep[i]);
    CHECK(bad == 0, "%zu memalign/aligned_alloc results (align 16..1 MiB) failed", bad);
    errno = 0;
    void *p = memalign(((size_t)1 << 63) + 1, 16);
    CHECK(p == NULL && errno == EINVAL, "memalign(2^63 + 1) = %p, errno %d", p, errno);
    errno = 0;
    p = memalign(4096, SIZE_MAX - 100);
    CHECK(p == NULL && errno == ENOMEM, "memalign(4096, huge) = %p, errno %d", p, errno);
    p = memalign(48, 100); /* glibc: rounded up to 64 */
    CHECK(p && aligned(p, 64), "memalign(48) = %p, not 64-aligned", p);
    free(p);
    if (under_heaplab) {
        errno = 0;
        p = aligned_alloc(24, 48);
        CHECK(p == NULL && errno == EINVAL, "aligned_alloc(24) = %p, errno %d", p, errno);
    }
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    p = valloc(10);
    CHECK(p && aligned(p, page), "valloc = %p", p);
    free(p);
    p = pvalloc(page + 1);
    CHECK(p && aligned(p, page) && malloc_usable_size(p) >= 2 * page, "pvalloc = %p, usable %zu", p,
          p ? malloc_usable_size(p) : 0);
    free(p);
    errno = 0;
    p = pvalloc(SIZE_MAX - 10);
    CHECK(p == NULL && errno == ENOMEM, "pvalloc(huge) = %p, errno %d", p, errno);
}

static int filled(const unsigned char *p, size_t n, unsigned char v) {
    for (size_t i = 0; i < n; i++)
        if (p[i] != v) return 0;
    return 1;
}

static void check_realloc(void) {
    unsigned char *p = realloc(NULL, 100);
    CHECK(p != NULL, "realloc(NULL, 100) returned NULL");
    memset(p, 0x33, 100);
    p = realloc(p, 100000);
    CHECK(p && filled(p, 100, 0x33), "grow lost the contents");
    memset(p, 0x44, 100000);
    p = realloc(p, 50);
    CHECK(p && filled(p, 50, 0x44), "shrink lost the contents");
    size_t moved = 0, lost = 0;
    for (size_t n = 64; n < 200000; n = n * 3 / 2) {
        unsigned char *q = realloc(p, n);
        if (!q) { lost++; break; }
        if (!filled(q, 50, 0x44)) lost++;
        moved += q != p;
        p = q;
    }
    CHECK(lost == 0, "growing in steps lost contents");
    errno = 0;
    unsigned char *q = realloc(p, (size_t)PTRDIFF_MAX + 1);
    CHECK(q == NULL && errno == ENOMEM && filled(p, 50, 0x44), "realloc(huge) = %p, errno %d", q, errno);
    errno = 0;
    q = reallocarray(p, SIZE_MAX / 2, 4);
    CHECK(q == NULL && errno == ENOMEM && filled(p, 50, 0x44), "reallocarray overflow = %p, errno %d", q, errno);
    q = reallocarray(p, 10, 10);
    CHECK(q && filled(q, 50, 0x44), "reallocarray(10, 10) failed");
    p = q;
    /* glibc 2.36: realloc(p, 0) frees p and returns NULL */
    q = realloc(p, 0);
    CHECK(q == NULL, "realloc(p, 0) = %p, glibc frees and returns NULL", q);
    size_t n = 1000;
    p = malloc(n);
    size_t usable = malloc_usable_size(p);
    CHECK(usable >= n, "usable %zu < %zu", usable, n);
    memset(p, 0x55, usable); /* the whole usable size is the program's */
    q = malloc(n);
    memset(q, 0x66, n);
    CHECK(filled(p, usable, 0x55), "writing the usable size of one block, then another block, broke it");
    free(q);
    free(p);
}

/* Pointers this library never handed out: ignored by free, 0 for
 * malloc_usable_size, copied by realloc (heaplab only: glibc would crash). */
static unsigned char foreign_buf[8192] __attribute__((aligned(4096)));

static void check_foreign(void) {
    unsigned char *f = foreign_buf + 64;
    memset(foreign_buf, 0, 64);
    memset(f, 0x77, 200);
    free(f);
    passed++;  /* still alive */
    CHECK(malloc_usable_size(f) == 0, "usable size of a foreign pointer = %zu", malloc_usable_size(f));
    unsigned char *q = realloc(f, 150);
    CHECK(q && q != f && filled(q, 150, 0x77) && filled(f, 200, 0x77), "realloc of a foreign block");
    free(q);
    /* a block that looks like a glibc chunk: its size word before it */
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    unsigned char *m = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    unsigned char *g = m + 32;
    ((size_t *)g)[-1] = 0x50 | 1;  /* chunk of 80 bytes, PREV_INUSE: 72 usable */
    memset(g, 0x78, 72);
    memset(g + 72, 0x79, 400);
    q = realloc(g, 300);
    CHECK(q && filled(q, 72, 0x78), "realloc of a glibc-like foreign chunk lost its 72 bytes");
    free(q);
    /* at the very end of a mapping: the copy must stop at the page */
    unsigned char *edge = m + 2 * page - 48;
    munmap(m, page);  /* keep only the second page; edge has no header before it in reach */
    memset(edge, 0x7A, 48);
    q = realloc(edge, 10000);
    CHECK(q && filled(q, 48, 0x7A), "realloc of a foreign block at the end of a mapping");
    free(q);
    munmap(m + page, page);
}

/* Pointers no allocator returned (heaplab only: glibc aborts): a misaligned one
 * is ignored by free, 0 for malloc_usable_size, NULL (ENOMEM) for realloc, and
 * so is realloc of a pointer on no mapped page; the blocks around stay whole,
 * and a block freed after them is handed out once. */
static void check_invalid(void) {
    unsigned char *a = malloc(100), *b = malloc(100);
    memset(a, 0x21, 100);
    memset(b, 0x22, 100);
    free(a + 3);
    free(a + 8);
    passed++; /* still alive */
    CHECK(malloc_usable_size(a + 3) == 0, "usable size of a misaligned pointer = %zu", malloc_usable_size(a + 3));
    errno = 0;
    void *q = realloc(a + 3, 200);
    CHECK(q == NULL && errno == ENOMEM, "realloc of a misaligned pointer = %p, errno %d", q, errno);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    unsigned char *gone = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(gone, page);
    errno = 0;
    q = realloc(gone + 64, 200);
    CHECK(q == NULL && errno == ENOMEM, "realloc of a pointer on no mapped page = %p, errno %d", q, errno);
    free(gone + 64);
    passed++; /* still alive */
    CHECK(filled(a, 100, 0x21) && filled(b, 100, 0x22), "the blocks around a refused free changed");
    free(a);
    unsigned char *x = malloc(100), *y = malloc(100);
    CHECK(x && y && x != y, "after refused frees, one block handed out twice (%p, %p)", (void *)x, (void *)y);
    free(x);
    free(y);
    free(b);
}

/* ---- threads ---------------------------------------------------------------- */

/* Operations per thread: 1M by default (HEAPLAB_PRELOAD_STRESS_OPS to change). */
enum { SLOTS = 512 };
static int OPS_PER_THREAD = 1000000;

typedef struct worker { unsigned seed; size_t errors; unsigned char tag; } worker;

static uint32_t lcg(unsigned *s) {
    *s = *s * 1103515245u + 12345u;
    return *s >> 8;
}

static void *worker_main(void *arg) {
    worker *w = arg;
    unsigned char *slot[SLOTS] = { 0 };
    size_t len[SLOTS] = { 0 };
    for (int i = 0; i < OPS_PER_THREAD; i++) {
        uint32_t r = lcg(&w->seed);
        size_t k = r % SLOTS;
        unsigned char v = (unsigned char)(w->tag ^ k);
        if (slot[k] && !filled(slot[k], len[k], v)) w->errors++;
        size_t n = (r >> 9) % 4 == 0 ? (r >> 12) % 20000 : (r >> 12) % 300;
        switch ((r >> 16) % 4) {
        case 0:
            free(slot[k]);
            slot[k] = NULL;
            len[k] = 0;
            break;
        case 1: {
            unsigned char *q = realloc(slot[k], n + 1);
            if (!q) { w->errors++; break; }
            slot[k] = q;
            size_t keep = len[k] < n + 1 ? len[k] : n + 1;
            if (!filled(q, keep, v)) w->errors++;
            memset(q, v, n + 1);
            len[k] = n + 1;
            break;
        }
        case 2:
            free(slot[k]);
            slot[k] = (r >> 20) & 1 ? calloc(1, n) : memalign(64, n);
            if (!slot[k] && n) w->errors++;
            if (slot[k] && !(r >> 20 & 1) && !aligned(slot[k], 64)) w->errors++;
            if (slot[k]) memset(slot[k], v, n);
            len[k] = slot[k] ? n : 0;
            break;
        default:
            free(slot[k]);
            slot[k] = malloc(n);
            if (!slot[k]) w->errors++;
            else memset(slot[k], v, n);
            len[k] = slot[k] ? n : 0;
        }
    }
    for (size_t k = 0; k < SLOTS; k++) {
        if (slot[k] && !filled(slot[k], len[k], (unsigned char)(w->tag ^ k))) w->errors++;
        free(slot[k]);
    }
    return NULL;
}

static void check_threads(void) {
    const char *ops = getenv("HEAPLAB_PRELOAD_STRESS_OPS");
    if (ops && atoi(ops) > 0) OPS_PER_THREAD = atoi(ops);
    pthread_t t[2];
    worker w[2] = { { 1, 0, 0x10 }, { 2, 0, 0xA0 } };
    for (int i = 0; i < 2; i++) pthread_create(&t[i], NULL, worker_main, &w[i]);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    CHECK(w[0].errors == 0 && w[1].errors == 0, "2 threads x %d ops: %zu + %zu errors", OPS_PER_THREAD,
          w[0].errors, w[1].errors);
}

/* Blocks handed from one thread to another, freed there. */
enum { HANDOFF = 20000 };
static void *volatile handoff_slot;
static void *consumer_main(void *arg) {
    size_t *errors = arg;
    for (int i = 0; i < HANDOFF; i++) {
        void *p;
        while (!(p = __atomic_exchange_n(&handoff_slot, NULL, __ATOMIC_ACQUIRE))) sched_yield();
        if (!filled(p, 64, (unsigned char)i)) (*errors)++;
        free(p);
    }
    return NULL;
}

static void check_handoff(void) {
    size_t errors = 0;
    pthread_t c;
    pthread_create(&c, NULL, consumer_main, &errors);
    for (int i = 0; i < HANDOFF; i++) {
        unsigned char *p = malloc(64 + (size_t)(i % 500));
        memset(p, (unsigned char)i, 64);
        while (__atomic_load_n(&handoff_slot, __ATOMIC_ACQUIRE)) sched_yield();
        __atomic_store_n(&handoff_slot, p, __ATOMIC_RELEASE);
    }
    pthread_join(c, NULL);
    CHECK(errors == 0, "%zu blocks handed across threads were corrupted", errors);
}

/* fork while another thread is inside malloc/free: the child must get a usable heap. */
static volatile int churn_stop;
static void *churn_main(void *arg) {
    (void)arg;
    void *keep[64] = { 0 };
    unsigned s = 7;
    while (!churn_stop) {
        uint32_t r = lcg(&s);
        free(keep[r % 64]);
        keep[r % 64] = malloc((r >> 8) % 5000);
    }
    for (int i = 0; i < 64; i++) free(keep[i]);
    return NULL;
}

static void check_fork(void) {
    pthread_t t;
    pthread_create(&t, NULL, churn_main, NULL);
    int bad = 0;
    for (int i = 0; i < 30; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            alarm(10);  /* a deadlocked heap ends the child with SIGALRM */
            void *p[100];
            for (int j = 0; j < 100; j++) {
                p[j] = malloc((size_t)(j * 37 + 1));
                if (!p[j]) _exit(2);
                memset(p[j], j, (size_t)(j * 37 + 1));
            }
            for (int j = 0; j < 100; j++) free(p[j]);
            char *s = strdup("child");
            _exit(s && strcmp(s, "child") == 0 ? 0 : 3);
        }
        int status = 0;
        if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            bad++;
            if (pid > 0) printf("fork child %d: status 0x%x\n", i, status);
        }
    }
    churn_stop = 1;
    pthread_join(t, NULL);
    CHECK(bad == 0, "%d of 30 forked children failed to allocate", bad);
}

static void check_stubs(void) {
    CHECK(malloc_trim(0) >= 0, "malloc_trim");
    (void)mallopt(M_MMAP_THRESHOLD, 1 << 20);
    struct mallinfo2 mi = mallinfo2();
    (void)mi;
    passed++;
}

/* A fixed sequence whose trace test/preload.test.ts checks record by record. The
 * sizes are unusual so the test can find them among the program's own calls. */
static int trace_sequence(void) {
    void *a = malloc(100001);
    void *b = calloc(3, 100002);
    void *c = memalign(4096, 100003);
    void *d = NULL;
    int rc = posix_memalign(&d, 256, 100004);
    a = realloc(a, 100005);
    free(b);
    c = realloc(c, 0);
    b = realloc(NULL, 100006);
    free(a);
    free(b);
    free(d);
    (void)c;
    return rc;
}

int main(int argc, char **argv) {
    Dl_info info;
    void *m = dlsym(RTLD_DEFAULT, "malloc");
    if (m && dladdr(m, &info) && info.dli_fname && strstr(info.dli_fname, "libheaplab-")) under_heaplab = 1;
    if (argc > 1 && strcmp(argv[1], "trace") == 0) return trace_sequence();
    check_malloc();
    check_calloc();
    check_posix_memalign();
    check_memalign();
    check_realloc();
    if (under_heaplab) check_foreign();
    if (under_heaplab) check_invalid();
    check_threads();
    check_handoff();
    check_fork();
    check_stubs();
    printf("allocator: %s\n", under_heaplab ? info.dli_fname : "glibc");
    printf("preload_test: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
