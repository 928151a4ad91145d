// replay.cc — replay(kind, trace, options): a whole trace in C (compare's C side),
// on the arena page source or mmap, with the arena's bytes rewritten as offsets.
#include <algorithm>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "node.h"
#include "walk.h"
extern "C" {
#include "../allocator.h"
#include "../pages/pages.h"
#include "../replay/replay.h"
}

namespace {

// One arena kept between replays (TS keeps its ArrayBuffer the same way): a
// replay's timing then never includes the first-touch faults of a new mapping.
struct ArenaCache {
  static std::mutex &Lock() {
    static std::mutex m;
    return m;
  }
  static hl_arena_pages &Slot() {
    static hl_arena_pages slot{};
    return slot;
  }
  static bool Take(hl_arena_pages *out, size_t page_size, size_t reserve, size_t limit) {
    std::lock_guard<std::mutex> guard(Lock());
    hl_arena_pages &slot = Slot();
    if (!slot.mapping || slot.page_size != (page_size ? page_size : hl_system_page_size())) return false;
    if (slot.reserved != hl_arena_pages_reservation(slot.page_size, reserve)) return false;
    *out = slot;
    slot = hl_arena_pages{};
    hl_arena_pages_reset(out, limit);
    return true;
  }
  static void Give(hl_arena_pages *src) {
    std::lock_guard<std::mutex> guard(Lock());
    hl_arena_pages &slot = Slot();
    if (slot.mapping) hl_arena_pages_fini(&slot);
    slot = *src;
  }
};

// replay(kind, trace, options) -> result | status. The whole trace runs in C.
// options: { pages: 'arena'|'mmap', limit, pageSize, reserve, offsets, snapshot, touch, walk }
// walk: the heap's walk after the trace, before its blocks are freed (offsets
// from the arena's base; addresses on mmap).
Napi::Value Replay(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string kind = info[0].As<Napi::String>().Utf8Value();
  Napi::Object trace = info[1].As<Napi::Object>();
  Napi::Object opts = info[2].As<Napi::Object>();
  const hl_allocator *ops = hl_allocator_find(kind.c_str());
  if (!ops) return Napi::Number::New(env, kUnknownAllocator);
  auto op = trace.Get("op").As<Napi::Uint8Array>();
  auto id = trace.Get("id").As<Napi::Uint32Array>();
  auto size = trace.Get("size").As<Napi::Float64Array>();
  auto align = trace.Get("alignLog2").As<Napi::Uint8Array>();
  hl_trace_view view{op.ElementLength(), op.Data(), id.Data(), size.Data(), align.Data(),
                     (uint32_t)trace.Get("maxId").As<Napi::Number>().Uint32Value()};
  bool arena = opts.Get("pages").As<Napi::String>().Utf8Value() == "arena";
  size_t limit = (size_t)opts.Get("limit").As<Napi::Number>().DoubleValue();
  size_t page_size = (size_t)opts.Get("pageSize").As<Napi::Number>().DoubleValue();
  size_t reserve = (size_t)opts.Get("reserve").As<Napi::Number>().DoubleValue();
  bool want_offsets = opts.Get("offsets").ToBoolean().Value();
  bool want_snapshot = arena && opts.Get("snapshot").ToBoolean().Value();

  hl_arena_pages arena_src;
  hl_mmap_pages mmap_src;
  hl_hooks hooks;
  if (arena) {
    if (!ArenaCache::Take(&arena_src, page_size, reserve, limit) &&
        hl_arena_pages_init(&arena_src, page_size, reserve, limit) != 0)
      return Napi::Number::New(env, kInvalidPageSize);
    hooks = hl_arena_pages_hooks(&arena_src, 1);
  } else {
    if (hl_mmap_pages_init(&mmap_src, page_size, limit) != 0) return Napi::Number::New(env, kInvalidPageSize);
    hooks = hl_mmap_pages_hooks(&mmap_src, 1);
  }
  auto finish_pages = [&]() {
    if (arena) ArenaCache::Give(&arena_src);
  };
  void *heap = ops->create(&hooks);
  if (!heap) {
    finish_pages();
    return Napi::Number::New(env, kOutOfMemory);
  }
  Napi::Float64Array offsets;
  hl_replay_options ro{arena ? arena_src.base : nullptr, nullptr, opts.Get("touch").ToBoolean().Value() ? 1 : 0};
  if (want_offsets) {
    offsets = Napi::Float64Array::New(env, view.count);
    ro.offsets = offsets.Data();
  }
  hl_replay_result rr{};
  hl_replay_blocks blocks{};
  if (hl_replay(ops, heap, &view, &ro, &rr, &blocks) != 0) {
    ops->destroy(heap);
    finish_pages();
    return Napi::Number::New(env, kOutOfMemory);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("elapsedNs", (double)rr.elapsed_ns);
  out.Set("failures", (double)rr.failures);
  out.Set("liveBlocks", (double)rr.live_blocks);
  out.Set("invariants", (double)ops->check(heap));
  Napi::Object st = Napi::Object::New(env);
  st.Set("bytesMapped", (double)(arena ? arena_src.bytes_mapped : mmap_src.bytes_mapped));
  st.Set("peakBytesMapped", (double)(arena ? arena_src.peak_bytes_mapped : mmap_src.peak_bytes_mapped));
  st.Set("pageMaps", (double)(arena ? arena_src.map_calls : mmap_src.map_calls));
  st.Set("pageUnmaps", (double)(arena ? arena_src.unmap_calls : mmap_src.unmap_calls));
  if (arena) st.Set("highWater", (double)arena_src.high_water);
  out.Set("stats", st);
  if (want_offsets) out.Set("offsets", offsets);
  if (opts.Get("walk").ToBoolean().Value() && ops->walk) {
    WalkColumns w(arena ? (uintptr_t)arena_src.base : 0);
    ops->walk(heap, WalkColumns::Add, &w);
    out.Set("walk", w.ToJs(env));
  }
  if (want_snapshot) {
    // The region's bytes up to its high water, with every word that points into
    // the region turned into its offset: what the port holds at the same place.
    size_t n = arena_src.high_water;
    Napi::Uint8Array snap = Napi::Uint8Array::New(env, n);
    memcpy(snap.Data(), arena_src.base, n);
    hl_arena_pages_clear_free(&arena_src, snap.Data(), n);
    uintptr_t lo = (uintptr_t)arena_src.base, hi = lo + arena_src.reserved;
    for (size_t at = 0; at + 8 <= n; at += 8) {
      uint64_t w;
      memcpy(&w, snap.Data() + at, 8);
      if (w >= lo && w < hi) {
        w -= lo;
        memcpy(snap.Data() + at, &w, 8);
      }
    }
    out.Set("snapshot", snap);
    out.Set("baseHigh", (double)(lo >> 32));
  }
  hl_replay_release(ops, heap, &blocks);
  ops->destroy(heap);
  out.Set("bytesMappedAfterDestroy", (double)(arena ? arena_src.bytes_mapped : mmap_src.bytes_mapped));
  finish_pages();
  return out;
}

}  // namespace

void ExportReplay(Napi::Env env, Napi::Object exports) { exports.Set("replay", Napi::Function::New(env, Replay, "replay")); }
