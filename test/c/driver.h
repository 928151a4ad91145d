/* driver.h — the tiny harness shared by the C test drivers: no framework, one
 * line per failed check, a summary line, and the exit status. */
#ifndef HEAPLAB_TEST_DRIVER_H
#define HEAPLAB_TEST_DRIVER_H

#include <stdio.h>
#include <stdint.h>

static size_t driver_passed, driver_failed;

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (cond) driver_passed++;                                          \
        else {                                                              \
            driver_failed++;                                                \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                   \
            fputc('\n', stderr);                                            \
        }                                                                   \
    } while (0)

static inline int driver_finish(const char *name) {
    printf("%s: %zu passed, %zu failed\n", name, driver_passed, driver_failed);
    return driver_failed ? 1 : 0;
}

/* xorshift64*: deterministic and seeded, so a failure replays. */
static inline uint64_t driver_rand(uint64_t *state) {
    uint64_t x = *state;
    x ^= x >> 12; x ^= x << 25; x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

#endif
