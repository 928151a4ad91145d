/*
 * test_fuzz_smoke.c — the fuzz driver (test/fuzz/fuzz_alloc.c) without
 * libFuzzer: a short seeded pass for `npm test`, built with gcc, ASan + UBSan.
 *
 *   test_fuzz_smoke                 every target (each allocator, each under the
 *                                   debug layer, each behind the thread cache) for HEAPLAB_FUZZ_SMOKE_MS ms
 *                                   (default 400) of random inputs, seed
 *                                   HEAPLAB_FUZZ_SEED (default 1)
 *   test_fuzz_smoke FILE...         replays inputs (e.g. a crash libFuzzer saved);
 *                                   HEAPLAB_FUZZ_ALLOCATOR picks the target as there
 *
 * A finding aborts with its description (see fuzz_alloc.c); the last line is the
 * usual "test_fuzz_smoke: P passed, F failed".
 */
#include "../fuzz/fuzz_alloc.c"

#include <time.h>

#include "driver.h"

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int replay_file(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "test_fuzz_smoke: cannot open %s\n", path);
        return 0;
    }
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
    return 1;
}

int main(int argc, char **argv) {
    fuzz_setup();
    if (argc > 1) {
        for (int i = 1; i < argc; i++) CHECK(replay_file(argv[i]), "replay %s", argv[i]);
        return driver_finish("test_fuzz_smoke");
    }
    const char *ms_env = getenv("HEAPLAB_FUZZ_SMOKE_MS"), *seed_env = getenv("HEAPLAB_FUZZ_SEED");
    double budget = ms_env ? atof(ms_env) : 400;
    uint64_t seed = seed_env ? strtoull(seed_env, NULL, 0) : 1;
    static uint8_t input[4096];
    for (size_t t = 0; t < fuzz_target_count; t++) {
        if (fuzz_fixed >= 0 && (size_t)fuzz_fixed != t) continue;
        uint64_t rng = seed * 0x9E3779B97F4A7C15ULL + t + 1;
        double start = now_ms();
        do {
            size_t len = 16 + (size_t)(driver_rand(&rng) % (sizeof input - 16));
            for (size_t i = 0; i < len; i += 8) {
                uint64_t w = driver_rand(&rng);
                memcpy(input + i, &w, len - i < 8 ? len - i : 8);
            }
            fuzz_one(&fuzz_targets[t], input, len);
        } while (now_ms() - start < budget);
        CHECK(fuzz_targets[t].ops > 0, "%s ran no operation", fuzz_targets[t].a->name);
    }
    return driver_finish("test_fuzz_smoke");
}
