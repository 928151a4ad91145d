/*
 * libc.h — everything vendor/ needs beyond the freestanding headers (stddef.h,
 * stdint.h): memcpy and memset, and two error numbers for dlmalloc's
 * posix_memalign. A host takes them from <string.h> and <errno.h>; a kernel
 * builds vendor/ with -DHL_FREESTANDING (kernel/ is the worked example) and
 * links its own memcpy and memset. The freestanding build (CMakeLists.txt,
 * heaplab_vendor_freestanding) sees no other header, so no other libc name can
 * creep into vendor/.
 */
#ifndef HEAPLAB_LIBC_H
#define HEAPLAB_LIBC_H

#include <stddef.h>

#ifdef HL_FREESTANDING
void *memcpy(void *restrict dst, const void *restrict src, size_t n);
void *memset(void *dst, int c, size_t n);
#define HL_EINVAL 22 /* Linux's values, which posix_memalign's callers compare with */
#define HL_ENOMEM 12
#else
#include <errno.h>
#include <string.h>
#define HL_EINVAL EINVAL
#define HL_ENOMEM ENOMEM
#endif

#endif
