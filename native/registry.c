/* registry.c — the allocators this build holds (CMake defines HL_HAVE_NAME). */
#include <string.h>
#include "allocator.h"
#include "cache/cache.h"

#ifdef HL_HAVE_TLSF
extern const hl_allocator hl_allocator_tlsf;
#endif
#ifdef HL_HAVE_DLMALLOC
extern const hl_allocator hl_allocator_dlmalloc;
#endif
#ifdef HL_HAVE_LIBALLOC
extern const hl_allocator hl_allocator_liballoc;
#endif

const hl_allocator *const hl_allocators[] = {
#ifdef HL_HAVE_TLSF
    &hl_allocator_tlsf,
#endif
#ifdef HL_HAVE_DLMALLOC
    &hl_allocator_dlmalloc,
#endif
#ifdef HL_HAVE_LIBALLOC
    &hl_allocator_liballoc,
#endif
    NULL,
};

const hl_allocator *hl_allocator_find(const char *name) {
    for (const hl_allocator *const *a = hl_allocators; *a; a++)
        if (strcmp((*a)->name, name) == 0) return *a;
    /* NAME+cache: the design behind the thread cache layer (cache/cache.h) */
    size_t n = strlen(name);
    if (n > 6 && strcmp(name + n - 6, "+cache") == 0) {
        char base[32];
        if (n - 6 >= sizeof base) return NULL;
        memcpy(base, name, n - 6);
        base[n - 6] = 0;
        for (const hl_allocator *const *a = hl_allocators; *a; a++)
            if (strcmp((*a)->name, base) == 0) return hl_cache_wrap(*a);
    }
    return NULL;
}
