/* registry.c — the allocators this build holds (CMake defines HL_HAVE_NAME). */
#include <string.h>
#include "allocator.h"

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
    return NULL;
}
