// node.h — what the binding's files share: the status codes every call returns
// (lib/errors.ts turns them into coded errors) and the function each file
// exports its objects with. addon.cc is Init alone.
#ifndef HEAPLAB_NODE_H
#define HEAPLAB_NODE_H

#include <napi.h>

#include <cstddef>
#include <cstdint>

// lib/errors.ts's Status names the same codes; the addon exports this table as
// `statuses` and test/single-home.test.ts fails if the two disagree.
enum HlStatus : int32_t {
  kOk = 0,
  kOutOfMemory = 1,
  kInvalidSize = 2,
  kInvalidAlignment = 3,
  kNotLive = 4,  // freed already, or never this heap's
  kDestroyed = 5,
  kExternalBuffersRefused = 6,
  kUnknownAllocator = 7,
  kInvalidPageSize = 8,
  kNotDebug = 9,  // a debug-only call on a heap made without { debug }
  kForeign = 10,  // a view that is not the block's own Buffer
};

inline constexpr size_t kArenaReserve = (size_t)1 << 30;  // address space of an arena heap without a limit
inline constexpr double kMaxRequest = 9007199254740991.0;  // 2**53 - 1; the allocator bounds it further
inline constexpr size_t kMaxAlign = (size_t)1 << 30;         // lib/validate.ts's MAX_ALIGNMENT

// Each adds its objects to the module's exports.
void ExportHeap(Napi::Env env, Napi::Object exports);     // heap.cc: NativeHeap
void ExportReplay(Napi::Env env, Napi::Object exports);   // replay.cc: replay
void ExportBench(Napi::Env env, Napi::Object exports);    // bench.cc: bench, benchClock

#endif
