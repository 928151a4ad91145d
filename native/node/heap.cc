// heap.cc — NativeHeap: a heap of one design whose blocks are external Buffers.
//
// Lifetime: every Buffer handed to JS owns a Token. The explicit free and the
// Buffer's finalizer both go through the Token, so a block is freed exactly once
// whatever order they run in (Node runs external-buffer finalizers late, after
// the address may have been reused). A Token holds a reference on its HeapState,
// so the heap outlives every finalizer that could still touch it. lib/heap/heap.ts
// validates every argument; this file trusts their types and ranges.
#include <algorithm>
#include <cstring>
#include <string>
#include <atomic>
#include <mutex>
#include <cmath>
#include <unordered_map>
#include <vector>

#include <sys/mman.h>

#include "node.h"
#include "walk.h"
extern "C" {
#include "../allocator.h"
#include "../pages/pages.h"
#include "../debug/debug.h"
#include "../cache/cache.h"
}

namespace {

struct HeapState;

struct Token {
  HeapState *heap;
  void *ptr;
  size_t size;   // bytes requested; the Buffer's length
  size_t align;  // alignment requested (check() verifies it still holds)
  double id;
  napi_ref buffer;  // weak: lets destroy() detach a Buffer JS still holds
  bool freed;
  // Set once the Buffer exists. Node calls the finalizer itself when it cannot
  // make the Buffer; then Wrap, not the finalizer, cleans up.
  bool adopted;
};

struct Stats {
  double bytesInUse = 0, peakBytesInUse = 0, blocksInUse = 0, peakBlocksInUse = 0;
  double allocs = 0, frees = 0, reallocs = 0, failedAllocs = 0, finalized = 0;
};

// Everything stats() reports: the counters and the page source's.
struct Counters {
  Stats stats;
  double bytesMapped = 0, peakBytesMapped = 0, pageMaps = 0, pageUnmaps = 0, pageRemaps = 0;
  double bytesCached = 0, cacheHits = 0, cacheMisses = 0, bytesReleased = 0, bytesPrefaulted = 0;
  double threadCacheHits = 0, threadCacheMisses = 0, threadCacheFlushes = 0, threadCacheBytes = 0, threadCacheDoubleFrees = 0,
         threadCacheArenas = 0, threadCacheTransfers = 0;
};

// The C heap itself, which several threads' NativeHeap objects may hold once it
// is shared (heap.share() / attachHeap()): the design, its page source and the
// counters. Until it is shared one thread alone uses it, so its page source's
// lock is skipped (solo) and the counters need no lock.
struct Core {
  const hl_allocator *ops = nullptr;
  void *heap = nullptr;
  hl_mmap_pages pages{};
  hl_arena_pages arena{};
  bool use_arena = false;
  // Debug mode (native/debug/debug.h): ops is the debug layer's table over the
  // allocator and heap an hl_debug_heap; each alloc names its requester first.
  hl_debug_heap *debug = nullptr;
  hl_hooks hooks{};
  std::string kind;
  // A zeroed block: the design's calloc, unless the arena keeps stale pages
  // (region mode), where calloc's "fresh pages read zero" does not hold.
  void *Calloc(size_t size) {
    if (!arena.keep_stale) return ops->calloc(heap, 1, size);
    void *p = ops->malloc(heap, size);
    if (p) memset(p, 0, size);
    return p;
  }
  Stats stats;
  std::mutex stats_mu;             // taken once shared
  std::atomic<bool> shared{false};
  std::atomic<bool> ended{false};  // destroy() on any thread: every call now says destroyed
  std::atomic<int> users{1};       // HeapStates holding it
  uint64_t key = 0;                // its entry in SharedCores, once shared

  void Lock() { if (shared.load(std::memory_order_relaxed)) stats_mu.lock(); }
  void Unlock() { if (shared.load(std::memory_order_relaxed)) stats_mu.unlock(); }
  void CountAlloc(size_t size) {
    Lock();
    stats.allocs++;
    stats.bytesInUse += (double)size;
    stats.blocksInUse++;
    if (stats.bytesInUse > stats.peakBytesInUse) stats.peakBytesInUse = stats.bytesInUse;
    if (stats.blocksInUse > stats.peakBlocksInUse) stats.peakBlocksInUse = stats.blocksInUse;
    Unlock();
  }
  void CountFree(size_t size, bool finalized = false) {
    Lock();
    stats.frees++;
    stats.bytesInUse -= (double)size;
    stats.blocksInUse--;
    if (finalized) stats.finalized++;
    Unlock();
  }
  void CountRealloc(size_t from, size_t to) {
    Lock();
    stats.reallocs++;
    stats.bytesInUse += (double)to - (double)from;
    if (stats.bytesInUse > stats.peakBytesInUse) stats.peakBytesInUse = stats.bytesInUse;
    Unlock();
  }
  void CountFailure() {
    Lock();
    stats.failedAllocs++;
    Unlock();
  }
  Stats Snapshot() {
    Lock();
    Stats s = stats;
    Unlock();
    return s;
  }
  size_t BytesMapped() const {
    return use_arena ? arena.bytes_mapped : __atomic_load_n(&pages.bytes_mapped, __ATOMIC_RELAXED);
  }
  Counters Read() {
    Counters c;
    c.stats = Snapshot();
    c.bytesMapped = (double)BytesMapped();
    c.peakBytesMapped = (double)(use_arena ? arena.peak_bytes_mapped : pages.peak_bytes_mapped);
    c.pageMaps = (double)(use_arena ? arena.map_calls : pages.map_calls);
    c.pageUnmaps = (double)(use_arena ? arena.unmap_calls : pages.unmap_calls);
    // all zero on the arena source
    c.pageRemaps = (double)__atomic_load_n(&pages.remap_calls, __ATOMIC_RELAXED);
    c.bytesCached = (double)__atomic_load_n(&pages.bytes_cached, __ATOMIC_RELAXED);
    c.cacheHits = (double)__atomic_load_n(&pages.cache_hits, __ATOMIC_RELAXED);
    c.cacheMisses = (double)__atomic_load_n(&pages.cache_misses, __ATOMIC_RELAXED);
    c.bytesReleased = (double)__atomic_load_n(&pages.bytes_released, __ATOMIC_RELAXED);
    c.bytesPrefaulted = (double)__atomic_load_n(&pages.bytes_prefaulted, __ATOMIC_RELAXED);
    if (heap && hl_cache_inner(ops)) {
      hl_cache_stats cs;
      hl_cache_get_stats(heap, &cs);
      c.threadCacheHits = (double)cs.hits;
      c.threadCacheMisses = (double)cs.misses;
      c.threadCacheFlushes = (double)cs.flushes;
      c.threadCacheBytes = (double)cs.cached_bytes;
      c.threadCacheDoubleFrees = (double)cs.double_frees;
      c.threadCacheArenas = (double)cs.arenas;
      c.threadCacheTransfers = (double)cs.transfers;
    }
    return c;
  }

  // Every page back; called by the last user, when no Buffer anywhere can reach them.
  void Destroy();
  // Gives up one user's hold; *last: the counters as that user leaves them (after
  // the pages went back, for the last user).
  void Release(Counters *last) {
    *last = Read();  // before letting go: another thread may free the core right after
    if (users.fetch_sub(1) == 1) {
      Destroy();
      *last = Read();
      delete this;
    }
  }
};

// The shared cores of this process by key, for attachHeap() in another thread.
struct SharedCores {
  std::mutex mu;
  std::unordered_map<uint64_t, Core *> by_key;
  uint64_t next = 0;
};
SharedCores &Shared() {
  static SharedCores *s = new SharedCores();  // never destroyed: workers may outlive static teardown
  return *s;
}

void Core::Destroy() {
  if (key) {
    std::lock_guard<std::mutex> g(Shared().mu);
    Shared().by_key.erase(key);
  }
  if (heap) ops->destroy(heap);
  heap = nullptr;
  if (!use_arena) hl_mmap_pages_release_cache(&pages);
  if (use_arena) {
    // keep the counters for stats() after destroy; the region itself goes
    size_t mapped = arena.bytes_mapped, peak = arena.peak_bytes_mapped, maps = arena.map_calls, unmaps = arena.unmap_calls;
    hl_arena_pages_fini(&arena);
    arena.bytes_mapped = mapped;
    arena.peak_bytes_mapped = peak;
    arena.map_calls = maps;
    arena.unmap_calls = unmaps;
  }
}

// One thread's hold on a Core: the Buffers it handed out (Tokens) and its
// lifetime. Its JS object, each of its Tokens and its region keep it alive.
struct HeapState {
  Core *core = nullptr;
  bool destroyed = false;  // this thread's hold was given up (or never came up)
  size_t refs = 1;  // the JS wrapper + one per Token not yet finalized (+ the region's ArrayBuffer)
  // Region mode (createUnsafeHeap): blocks are views over one external
  // ArrayBuffer that spans the arena; a bit per 16 bytes marks each live
  // block's start, so that free and realloc are handed only real block starts.
  napi_ref region = nullptr;  // weak: destroy() detaches it
  bool region_made = false;
  uint8_t *starts = nullptr;  // the bitmap (mmap, NORESERVE)
  size_t starts_bytes = 0;
  std::unordered_map<double, Token *> live;

  // No call may use the heap: this thread gave it up, or some thread destroyed it.
  bool Gone() const { return destroyed || core->ended.load(std::memory_order_relaxed); }

  void Ref() { refs++; }
  void Unref() {
    if (--refs == 0) {
      TearDown(nullptr);
      delete this;
    }
  }

  // Gives this thread's hold up: its Buffers are detached first (when there is
  // an env), so no Buffer can reach memory that goes back; its live blocks go
  // back to the design unless the whole heap is ending anyway. The pages go
  // back with the last hold (Core::Release).
  void TearDown(napi_env env) {
    if (destroyed) return;
    destroyed = true;
    bool ending = core->ended.load();
    for (auto &entry : live) {
      Token *t = entry.second;
      if (env && t->buffer) DetachRef(env, t->buffer);
      if (!ending) {
        core->ops->free(core->heap, t->ptr);
        core->CountFree(t->size);
      }
      t->freed = true;
    }
    live.clear();
    if (env && region) DetachArrayBufferRef(env, region);
    if (starts) munmap(starts, starts_bytes);
    starts = nullptr;
    core->Release(&last);
    core = nullptr;  // Gone() is true now and reads `destroyed` first
  }

  Counters last;  // what stats() says after the hold was given up

  static void DetachArrayBufferRef(napi_env env, napi_ref ref) {
    napi_value value;
    if (napi_get_reference_value(env, ref, &value) != napi_ok || value == nullptr) return;
    bool detached = false;
    napi_is_detached_arraybuffer(env, value, &detached);
    if (!detached) napi_detach_arraybuffer(env, value);
  }

  static void DetachRef(napi_env env, napi_ref ref) {
    napi_value value;
    if (napi_get_reference_value(env, ref, &value) != napi_ok || value == nullptr) return;
    Detach(env, value);
  }

  static void Detach(napi_env env, napi_value typed) {
    napi_value arraybuffer;
    if (napi_get_typedarray_info(env, typed, nullptr, nullptr, nullptr, &arraybuffer, nullptr) != napi_ok) return;
    bool detached = false;
    napi_is_detached_arraybuffer(env, arraybuffer, &detached);
    if (!detached) napi_detach_arraybuffer(env, arraybuffer);
  }
};

void FinalizeBuffer(napi_env env, void * /*data*/, void *hint) {
  Token *t = static_cast<Token *>(hint);
  if (!t->adopted) return;
  HeapState *h = t->heap;
  if (!t->freed) {
    if (!h->Gone()) {
      h->core->ops->free(h->core->heap, t->ptr);
      h->core->CountFree(t->size, true);
    }
    // out of `live` either way: when another thread ended the heap, this
    // thread's TearDown is still to come and walks `live`, which must not
    // name a Token deleted here (it did: a write to freed memory that
    // corrupted glibc's heap, when a worker exited after destroy() elsewhere)
    h->live.erase(t->id);
  }
  if (t->buffer) napi_delete_reference(env, t->buffer);
  delete t;
  h->Unref();
}

// The region ArrayBuffer holds a reference on its heap: the arena stays mapped
// while any view over it can still be reached, even if the heap object is gone.
void FinalizeRegion(napi_env env, void * /*data*/, void *hint) {
  HeapState *h = static_cast<HeapState *>(hint);
  if (h->region) napi_delete_reference(env, h->region);
  h->region = nullptr;
  h->Unref();
}

// ---- region mode's hot path ------------------------------------------------------
// alloc and free as plain functions bound to the heap (info.Data()), so a call
// does not unwrap an object; each holds a reference on the heap (released when
// the function is collected). JS makes the views; free takes the view itself
// and finds its block by address, so only a view that starts a live block of
// this region can free anything.

bool IsStart(const HeapState *h, size_t off) { return (h->starts[off >> 7] >> ((off >> 4) & 7)) & 1; }
void MarkStart(HeapState *h, size_t off, bool on) {
  uint8_t bit = (uint8_t)(1u << ((off >> 4) & 7));
  if (on) h->starts[off >> 7] |= bit;
  else h->starts[off >> 7] &= (uint8_t)~bit;
}

// (size, align, zero) -> offset | -status. Validates everything itself: the JS
// side passes its arguments straight through on the hot path.
napi_value RegionAlloc(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 3;
  napi_value argv[3];
  void *data;
  napi_get_cb_info(env, cbinfo, &argc, argv, nullptr, &data);
  HeapState *h = static_cast<HeapState *>(data);
  double size_d = -1, align_d = 16, result;
  bool zero = false;
  bool sized = argc > 0 && napi_get_value_double(env, argv[0], &size_d) == napi_ok;
  bool aligned = argc < 2 || napi_get_value_double(env, argv[1], &align_d) == napi_ok;
  if (argc > 2) napi_get_value_bool(env, argv[2], &zero);
  size_t align = aligned && align_d >= 1 && align_d <= (double)kMaxAlign ? (size_t)align_d : 0;
  if (h->Gone() || !h->starts) {
    result = -(double)kDestroyed;
  } else if (!sized || !(size_d >= 0 && size_d <= kMaxRequest) || size_d != (double)(size_t)size_d) {
    result = -(double)kInvalidSize;
  } else if (align == 0 || (align & (align - 1)) || (double)align != align_d) {
    result = -(double)kInvalidAlignment;
  } else {
    size_t size = (size_t)size_d;
    void *ptr;
    if (align <= 16) {
      ptr = zero ? h->core->Calloc(size) : h->core->ops->malloc(h->core->heap, size);
    } else {
      ptr = h->core->ops->memalign(h->core->heap, align, size);
      if (ptr && zero) memset(ptr, 0, size);
    }
    if (!ptr) {
      h->core->CountFailure();
      result = -(double)kOutOfMemory;
    } else {
      size_t off = (size_t)((uint8_t *)ptr - h->core->arena.base);
      MarkStart(h, off, true);
      h->core->CountAlloc(size);
      result = (double)off;
    }
  }
  napi_value out;
  napi_create_double(env, result, &out);
  return out;
}

// (view) -> status
napi_value RegionFree(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 1;
  napi_value view;
  void *data;
  napi_get_cb_info(env, cbinfo, &argc, &view, nullptr, &data);
  HeapState *h = static_cast<HeapState *>(data);
  HlStatus status = kOk;
  napi_typedarray_type type;
  size_t length = 0;
  void *bytes = nullptr;
  if (h->Gone() || !h->starts) {
    status = kDestroyed;
  } else if (argc < 1 || napi_get_typedarray_info(env, view, &type, &length, &bytes, nullptr, nullptr) != napi_ok ||
             type != napi_uint8_array) {
    status = kForeign;
  } else {
    uintptr_t a = (uintptr_t)bytes, base = (uintptr_t)h->core->arena.base;
    size_t off = (size_t)(a - base);
    if (a < base || off >= h->core->arena.reserved || (off & 15) || !IsStart(h, off)) {
      status = kNotLive;
    } else if (length > h->core->ops->usable_size(h->core->heap, bytes)) {
      status = kForeign;
    } else {
      MarkStart(h, off, false);
      h->core->ops->free(h->core->heap, bytes);
      h->core->CountFree(length);
    }
  }
  napi_value out;
  napi_create_int32(env, status, &out);
  return out;
}

void FinalizeBound(napi_env /*env*/, void *data, void * /*hint*/) { static_cast<HeapState *>(data)->Unref(); }

napi_value Bound(napi_env env, const char *name, napi_callback fn, HeapState *h) {
  napi_value f;
  napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, h, &f);
  h->Ref();
  napi_add_finalizer(env, f, h, FinalizeBound, nullptr, nullptr);
  return f;
}

class NativeHeap : public Napi::ObjectWrap<NativeHeap> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "NativeHeap",
                       {
                           InstanceMethod<&NativeHeap::Alloc>("alloc"),
                           InstanceMethod<&NativeHeap::Free>("free"),
                           InstanceMethod<&NativeHeap::Realloc>("realloc"),
                           InstanceMethod<&NativeHeap::UsableSize>("usableSize"),
                           InstanceMethod<&NativeHeap::Stats>("stats"),
                           InstanceMethod<&NativeHeap::Check>("check"),
                           InstanceMethod<&NativeHeap::Destroy>("destroy"),
                           InstanceMethod<&NativeHeap::Status>("status"),
                           InstanceMethod<&NativeHeap::Findings>("findings"),
                           InstanceMethod<&NativeHeap::DebugAddress>("debugAddress"),
                           InstanceMethod<&NativeHeap::DebugPoke>("debugPoke"),
                           InstanceMethod<&NativeHeap::Region>("region"),
                           InstanceMethod<&NativeHeap::ReallocAt>("reallocAt"),
                           InstanceMethod<&NativeHeap::UsableAt>("usableAt"),
                           InstanceMethod<&NativeHeap::Share>("share"),
                           InstanceMethod<&NativeHeap::Walk>("walk"),
                       });
  }

  // new NativeHeap(kind, limit, pageSize, pages, debug, pageCache, maxBufferLength);
  // status() tells whether it came up. pages: 'mmap' (default) or 'arena'
  // (deterministic, as the TS ports see it).
  // new NativeHeap(key, maxBufferLength): a hold on the shared heap of that key
  // (heap.share() in another thread), or status destroyed if there is none.
  NativeHeap(const Napi::CallbackInfo &info) : Napi::ObjectWrap<NativeHeap>(info) {
    state_ = new HeapState();
    if (info[0].IsNumber()) {
      if (info.Length() > 1 && info[1].IsNumber()) max_buffer_ = info[1].As<Napi::Number>().DoubleValue();
      uint64_t key = (uint64_t)info[0].As<Napi::Number>().DoubleValue();
      std::lock_guard<std::mutex> g(Shared().mu);
      auto it = Shared().by_key.find(key);
      if (it == Shared().by_key.end() || it->second->ended.load()) {
        init_status_ = kDestroyed;
        state_->destroyed = true;
        return;
      }
      state_->core = it->second;
      state_->core->users.fetch_add(1);
      return;
    }
    state_->core = new Core();
    Core *c = state_->core;
    c->kind = info[0].As<Napi::String>().Utf8Value();
    if (info.Length() > 6 && info[6].IsNumber()) max_buffer_ = info[6].As<Napi::Number>().DoubleValue();
    size_t limit = (size_t)info[1].As<Napi::Number>().DoubleValue();
    size_t page_size = (size_t)info[2].As<Napi::Number>().DoubleValue();
    c->ops = hl_allocator_find(c->kind.c_str());
    if (!c->ops) {
      InitFailed(kUnknownAllocator);
      return;
    }
    c->use_arena = info.Length() > 3 && info[3].IsString() && info[3].As<Napi::String>().Utf8Value() == "arena";
    int rc = c->use_arena ? hl_arena_pages_init(&c->arena, page_size, limit ? limit : kArenaReserve, limit)
                          : hl_mmap_pages_init(&c->pages, page_size, limit);
    if (rc != 0) {
      InitFailed(kInvalidPageSize);
      return;
    }
    if (!c->use_arena && info.Length() > 5 && info[5].IsObject()) {
      // pageCache: { enabled, floor, percent, decayMs, runMax, prefault } (lib/heap/heap.ts checks and fills it in)
      Napi::Object o = info[5].As<Napi::Object>();
      hl_page_cache_config &cfg = c->pages.cache;
      cfg.enabled = o.Get("enabled").ToBoolean().Value() ? 1 : 0;
      cfg.floor = (size_t)o.Get("floor").As<Napi::Number>().DoubleValue();
      cfg.percent = (unsigned)o.Get("percent").As<Napi::Number>().DoubleValue();
      cfg.decay_ms = (unsigned)o.Get("decayMs").As<Napi::Number>().DoubleValue();
      cfg.run_max = (size_t)o.Get("runMax").As<Napi::Number>().DoubleValue();
      cfg.prefault = (size_t)o.Get("prefault").As<Napi::Number>().DoubleValue();
    }
    c->hooks = c->use_arena ? hl_arena_pages_hooks(&c->arena, 1) : hl_mmap_pages_hooks(&c->pages, 1);
    // One JS thread uses the heap until it is shared: the lock is skipped till then.
    c->pages.lock.solo = 1;
    c->arena.lock.solo = 1;
    if (info.Length() > 4 && info[4].IsObject()) {
      // debug: { quarantine, quarantineBytes, checkEvery } (lib/heap/heap.ts fills in the defaults)
      Napi::Object d = info[4].As<Napi::Object>();
      hl_debug_options o = hl_debug_default_options();
      o.quarantine_blocks = (size_t)d.Get("quarantine").As<Napi::Number>().DoubleValue();
      o.quarantine_bytes = (size_t)d.Get("quarantineBytes").As<Napi::Number>().DoubleValue();
      o.check_every = (size_t)d.Get("checkEvery").As<Napi::Number>().DoubleValue();
      c->debug = hl_debug_create(c->ops, &c->hooks, &o);
      c->heap = c->debug;
      c->ops = hl_debug_wrap(c->ops);
    } else {
      c->heap = c->ops->create(&c->hooks);
    }
    if (!c->heap) InitFailed(kOutOfMemory);
  }

  void InitFailed(HlStatus status) {
    init_status_ = status;
    state_->TearDown(nullptr);
  }

  ~NativeHeap() override { state_->Unref(); }

 private:
  HeapState *state_;
  int32_t init_status_ = kOk;
  // The longest Buffer Node makes (buffer.constants.MAX_LENGTH). A longer one
  // makes node::Buffer::New fail after calling the finalizer, so it is refused
  // before the allocation.
  double max_buffer_ = 4294967296.0;

  Napi::Value Status(const Napi::CallbackInfo &info) { return Napi::Number::New(info.Env(), init_status_); }

  Napi::Value Fail(Napi::Env env, HlStatus s) { return Napi::Number::New(env, s); }

  // Wraps ptr in an external Buffer owned by a new Token.
  Napi::Value Wrap(Napi::Env env, double id, void *ptr, size_t size, size_t align) {
    Token *t = new Token{state_, ptr, size, align < 16 ? 16 : align, id, nullptr, false, false};
    napi_value buf;
    napi_status st = napi_create_external_buffer(env, size, ptr, FinalizeBuffer, t, &buf);
    if (st != napi_ok) {
      // V8 sandbox builds refuse external memory: say so rather than copy silently.
      delete t;
      return Napi::Value();
    }
    t->adopted = true;
    state_->Ref();
    napi_create_reference(env, buf, 0, &t->buffer);
    state_->live.emplace(id, t);
    return Napi::Value(env, buf);
  }

  // alloc(id, size, align, zero) -> Buffer | status
  Napi::Value Alloc(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (state_->Gone()) return Fail(env, kDestroyed);
    double id = info[0].As<Napi::Number>().DoubleValue();
    double size_d = info[1].As<Napi::Number>().DoubleValue();
    double align_d = info[2].As<Napi::Number>().DoubleValue();
    bool zero = info[3].ToBoolean().Value();
    if (!(size_d >= 0 && size_d <= kMaxRequest && size_d <= max_buffer_)) return Fail(env, kInvalidSize);
    size_t size = (size_t)size_d, align = (size_t)align_d;
    if (align == 0 || (align & (align - 1))) return Fail(env, kInvalidAlignment);
    SetRequester(info, 4);
    void *ptr;
    if (align <= 16)
      ptr = zero ? state_->core->Calloc(size) : state_->core->ops->malloc(state_->core->heap, size);
    else {
      ptr = state_->core->ops->memalign(state_->core->heap, align, size);
      if (ptr && zero) memset(ptr, 0, size);
    }
    if (!ptr) {
      state_->core->CountFailure();
      return Fail(env, kOutOfMemory);
    }
    Napi::Value buf = Wrap(env, id, ptr, size, align);
    if (buf.IsEmpty()) {
      state_->core->ops->free(state_->core->heap, ptr);
      return Fail(env, kExternalBuffersRefused);
    }
    state_->core->CountAlloc(size);
    return buf;
  }

  Token *Live(double id) {
    auto it = state_->live.find(id);
    return it == state_->live.end() ? nullptr : it->second;
  }

  // The live Token of `id`, if `view` really is its Buffer: the same bytes at
  // the same address. JS finds the id on the Buffer itself; this makes sure a
  // forged id on another view can never free a block that its Buffer still shows.
  Token *Owned(Napi::Env env, double id, napi_value view, HlStatus *why) {
    Token *t = Live(id);
    if (!t) {
      *why = kNotLive;
      return nullptr;
    }
    void *data = nullptr;
    size_t length = 0;
    napi_typedarray_type type;
    if (napi_get_typedarray_info(env, view, &type, &length, &data, nullptr, nullptr) != napi_ok ||
        type != napi_uint8_array || length != t->size || (length != 0 && data != t->ptr)) {
      // (V8 reports no data pointer for an empty buffer; an empty view shows nothing)
      *why = kForeign;
      return nullptr;
    }
    return t;
  }

  // free(id, buffer) -> status
  Napi::Value Free(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (state_->Gone()) return Fail(env, kDestroyed);
    HlStatus why = kOk;
    Token *t = Owned(env, info[0].As<Napi::Number>().DoubleValue(), info[1], &why);
    if (!t) return Fail(env, why);
    HeapState::Detach(env, info[1]);
    state_->core->ops->free(state_->core->heap, t->ptr);
    state_->core->CountFree(t->size);
    t->freed = true;
    state_->live.erase(t->id);
    return Fail(env, kOk);
  }

  // realloc(id, newId, size, buffer) -> Buffer | status; on failure the old
  // Buffer stays valid and attached, like C realloc.
  Napi::Value Realloc(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (state_->Gone()) return Fail(env, kDestroyed);
    HlStatus why = kOk;
    Token *t = Owned(env, info[0].As<Napi::Number>().DoubleValue(), info[3], &why);
    if (!t) return Fail(env, why);
    double new_id = info[1].As<Napi::Number>().DoubleValue();
    double size_d = info[2].As<Napi::Number>().DoubleValue();
    if (!(size_d >= 0 && size_d <= kMaxRequest && size_d <= max_buffer_)) return Fail(env, kInvalidSize);
    size_t size = (size_t)size_d;
    SetRequester(info, 4);
    void *ptr = ResizeKeepingAlignment(t, size);
    if (!ptr) {
      state_->core->CountFailure();
      return Fail(env, kOutOfMemory);
    }
    // The old block is gone (moved or resized): retire its Token and Buffer first.
    HeapState::Detach(env, info[3]);
    t->freed = true;
    state_->live.erase(t->id);
    // realloc keeps the alignment the block had
    Napi::Value buf = Wrap(env, new_id, ptr, size, t->align);
    if (buf.IsEmpty()) {
      state_->core->ops->free(state_->core->heap, ptr);
      state_->core->CountFree(t->size);  // the old block is gone, and no new one
      return Fail(env, kExternalBuffersRefused);
    }
    state_->core->CountRealloc(t->size, size);  // a realloc is not a free + alloc in the counters
    return buf;
  }

  // C realloc promises 16 bytes of alignment, not the block's. A block asked for
  // with a larger alignment keeps it: it grows by memalign + copy, and a resize
  // that lands misaligned is moved once more.
  void *ResizeKeepingAlignment(Token *t, size_t size) {
    const hl_allocator *ops = state_->core->ops;
    if (t->align <= 16) return ops->realloc(state_->core->heap, t->ptr, size);
    if (size > ops->usable_size(state_->core->heap, t->ptr)) {
      void *fresh = ops->memalign(state_->core->heap, t->align, size);
      if (!fresh) return nullptr;
      memcpy(fresh, t->ptr, t->size < size ? t->size : size);
      ops->free(state_->core->heap, t->ptr);
      return fresh;
    }
    void *ptr = ops->realloc(state_->core->heap, t->ptr, size);
    if (!ptr || ((uintptr_t)ptr & (t->align - 1)) == 0) return ptr;
    void *fresh = ops->memalign(state_->core->heap, t->align, size);
    if (!fresh) {
      t->align = 16;  // the contents survive; only the extra alignment is lost
      return ptr;
    }
    memcpy(fresh, ptr, size);
    ops->free(state_->core->heap, ptr);
    return fresh;
  }

  // usableSize(id) -> bytes | -status
  Napi::Value UsableSize(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (state_->Gone()) return Napi::Number::New(env, -kDestroyed);
    Token *t = Live(info[0].As<Napi::Number>().DoubleValue());
    if (!t) return Napi::Number::New(env, -kNotLive);
    return Napi::Number::New(env, (double)state_->core->ops->usable_size(state_->core->heap, t->ptr));
  }

  Napi::Value Stats(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    // the heap's counters (every thread's, once shared); after destroy, the last ones
    Counters c = state_->destroyed ? state_->last : state_->core->Read();
    const ::Stats &s = c.stats;
    o.Set("bytesMapped", c.bytesMapped);
    o.Set("peakBytesMapped", c.peakBytesMapped);
    o.Set("pageMaps", c.pageMaps);
    o.Set("pageUnmaps", c.pageUnmaps);
    o.Set("pageRemaps", c.pageRemaps);
    o.Set("bytesCached", c.bytesCached);
    o.Set("cacheHits", c.cacheHits);
    o.Set("cacheMisses", c.cacheMisses);
    o.Set("bytesReleased", c.bytesReleased);
    o.Set("bytesPrefaulted", c.bytesPrefaulted);
    o.Set("threadCacheHits", c.threadCacheHits);
    o.Set("threadCacheMisses", c.threadCacheMisses);
    o.Set("threadCacheFlushes", c.threadCacheFlushes);
    o.Set("threadCacheBytes", c.threadCacheBytes);
    o.Set("threadCacheDoubleFrees", c.threadCacheDoubleFrees);
    o.Set("threadCacheArenas", c.threadCacheArenas);
    o.Set("threadCacheTransfers", c.threadCacheTransfers);
    o.Set("bytesInUse", s.bytesInUse);
    o.Set("peakBytesInUse", s.peakBytesInUse);
    o.Set("blocksInUse", s.blocksInUse);
    o.Set("peakBlocksInUse", s.peakBlocksInUse);
    o.Set("allocs", s.allocs);
    o.Set("frees", s.frees);
    o.Set("reallocs", s.reallocs);
    o.Set("failedAllocs", s.failedAllocs);
    o.Set("finalized", s.finalized);
    return o;
  }

  // check() -> { invariants, blocks: [ids whose block looks wrong] } | status
  Napi::Value Check(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (state_->Gone()) return Fail(env, kDestroyed);
    Napi::Object o = Napi::Object::New(env);
    if (state_->core->debug) {
      // hl_debug_check counts its new findings too; those are told by findings()
      size_t before = hl_debug_findings_total(state_->core->debug);
      size_t total = hl_debug_check(state_->core->debug);
      o.Set("invariants", (double)(total - (hl_debug_findings_total(state_->core->debug) - before)));
    } else {
      o.Set("invariants", (double)state_->core->ops->check(state_->core->heap));
    }
    // Our own record cross-checks the allocator: each live block must still
    // be at least as large as what JS was given, and 16-byte aligned.
    Napi::Array bad = Napi::Array::New(env);
    uint32_t n = 0;
    for (auto &entry : state_->live) {
      Token *t = entry.second;
      size_t usable = state_->core->ops->usable_size(state_->core->heap, t->ptr);
      if (usable < t->size || ((uintptr_t)t->ptr & (t->align - 1))) bad.Set(n++, t->id);
    }
    o.Set("blocks", bad);
    return o;
  }

  // Debug mode: the requester id (lib/heap/heap.ts's label table) of the next block.
  void SetRequester(const Napi::CallbackInfo &info, size_t arg) {
    if (state_->core->debug && info.Length() > arg && info[arg].IsNumber())
      hl_debug_set_requester(state_->core->debug, (uintptr_t)info[arg].As<Napi::Number>().DoubleValue());
  }

  // findings() -> [{ kind, size, requester, culprit, offset }] (taken: each is told once)
  Napi::Value Findings(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Napi::Array out = Napi::Array::New(env);
    if (state_->Gone() || !state_->core->debug) return out;
    hl_debug_finding f[HL_DEBUG_MAX_FINDINGS];
    size_t n = hl_debug_take_findings(state_->core->debug, f, HL_DEBUG_MAX_FINDINGS);
    for (size_t i = 0; i < n; i++) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("kind", hl_debug_kind_name(f[i].kind));
      o.Set("size", (double)f[i].size);
      o.Set("requester", (double)f[i].requester);
      o.Set("offset", (double)f[i].offset);
      out.Set((uint32_t)i, o);
    }
    return out;
  }

  // Test hooks for debug heaps, standing in for buggy native code that was
  // handed a Buffer: debugAddress(id) -> the block's address | -status, and
  // debugPoke(address, byte) -> status, which writes one byte only where the
  // debug layer has a block (live or quarantined, header and canary included).
  Napi::Value DebugAddress(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (state_->Gone()) return Napi::Number::New(env, -kDestroyed);
    if (!state_->core->debug) return Napi::Number::New(env, -kNotDebug);
    Token *t = Live(info[0].As<Napi::Number>().DoubleValue());
    if (!t) return Napi::Number::New(env, -kNotLive);
    return Napi::Number::New(env, (double)(uintptr_t)t->ptr);
  }

  Napi::Value DebugPoke(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (state_->Gone()) return Fail(env, kDestroyed);
    if (!state_->core->debug) return Fail(env, kNotDebug);
    uintptr_t addr = (uintptr_t)info[0].As<Napi::Number>().DoubleValue();
    if (!hl_debug_owns(state_->core->debug, addr)) return Fail(env, kNotLive);
    *(volatile unsigned char *)addr = (unsigned char)info[1].As<Napi::Number>().Uint32Value();
    return Fail(env, kOk);
  }

  // ---- region mode (lib/heap/unsafe-heap.ts) ----------------------------------
  // Blocks are offsets into the arena; JS makes the views. Every entry point
  // checks what it is given against the start bitmap, so a bad offset is a
  // status, never a bad pointer handed to the allocator.

  bool RegionReady() const { return !state_->Gone() && state_->starts; }


  // The offset of a live block's start, or false (kNotLive) for anything else.
  bool LiveOffset(double off_d, size_t *off) const {
    if (!(off_d >= 0 && off_d < (double)state_->core->arena.reserved)) return false;
    *off = (size_t)off_d;
    return (*off & 15) == 0 && (double)*off == off_d && IsStart(state_, *off);
  }

  // region() -> { buffer: the ArrayBuffer over the whole arena, alloc, free } | status; once
  Napi::Value Region(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (state_->Gone()) return Fail(env, kDestroyed);
    if (!state_->core->use_arena || state_->region_made) return Fail(env, kForeign);
    size_t bytes = state_->core->arena.reserved;
    state_->starts_bytes = (bytes >> 7) + 1;
    void *m = mmap(nullptr, state_->starts_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return Fail(env, kOutOfMemory);
    napi_value ab;
    if (napi_create_external_arraybuffer(env, state_->core->arena.base, bytes, FinalizeRegion, state_, &ab) != napi_ok) {
      munmap(m, state_->starts_bytes);
      return Fail(env, kExternalBuffersRefused);
    }
    state_->starts = static_cast<uint8_t *>(m);
    state_->region_made = true;
    // blocks promise no contents (unless { zero: true }): reused pages are not
    // cleared, which at 1 MiB was most of an alloc + free
    state_->core->arena.keep_stale = 1;
    state_->Ref();
    napi_create_reference(env, ab, 0, &state_->region);
    Napi::Object out = Napi::Object::New(env);
    out.Set("buffer", Napi::Value(env, ab));
    out.Set("alloc", Napi::Value(env, Bound(env, "alloc", RegionAlloc, state_)));
    out.Set("free", Napi::Value(env, Bound(env, "free", RegionFree, state_)));
    return out;
  }

  // reallocAt(offset, length, size) -> new offset | -status (the old block stays on failure)
  Napi::Value ReallocAt(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!RegionReady()) return Napi::Number::New(env, -(double)(state_->Gone() ? kDestroyed : kForeign));
    size_t off;
    if (!LiveOffset(info[0].As<Napi::Number>().DoubleValue(), &off)) return Napi::Number::New(env, -(double)kNotLive);
    void *old = state_->core->arena.base + off;
    double length = info[1].As<Napi::Number>().DoubleValue();
    double size_d = info[2].As<Napi::Number>().DoubleValue();
    if (!(length >= 0 && length <= (double)state_->core->ops->usable_size(state_->core->heap, old))) return Napi::Number::New(env, -(double)kForeign);
    if (!(size_d >= 0 && size_d <= kMaxRequest)) return Napi::Number::New(env, -(double)kInvalidSize);
    void *ptr = state_->core->ops->realloc(state_->core->heap, old, (size_t)size_d);
    if (!ptr) {
      state_->core->CountFailure();
      return Napi::Number::New(env, -(double)kOutOfMemory);
    }
    MarkStart(state_, off, false);
    size_t now = (size_t)((uint8_t *)ptr - state_->core->arena.base);
    MarkStart(state_, now, true);
    state_->core->CountRealloc((size_t)length, (size_t)size_d);
    return Napi::Number::New(env, (double)now);
  }

  // usableAt(offset) -> bytes | -status
  Napi::Value UsableAt(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (!RegionReady()) return Napi::Number::New(env, -(double)(state_->Gone() ? kDestroyed : kForeign));
    size_t off;
    if (!LiveOffset(info[0].As<Napi::Number>().DoubleValue(), &off)) return Napi::Number::New(env, -(double)kNotLive);
    return Napi::Number::New(env, (double)state_->core->ops->usable_size(state_->core->heap, state_->core->arena.base + off));
  }

  // destroy(everywhere = true) -> status. everywhere: the heap ends for every
  // thread (their calls say destroyed from now on); else only this thread's hold
  // goes (heap.close()). Either way this thread's Buffers are detached, and the
  // pages go back with the last hold, when no Buffer anywhere can reach them.
  Napi::Value Destroy(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (state_->Gone()) return Fail(env, kDestroyed);
    bool everywhere = info.Length() < 1 || info[0].ToBoolean().Value();
    if (everywhere) {
      state_->core->ended.store(true);
      std::lock_guard<std::mutex> g(Shared().mu);  // no thread attaches from now on
      if (state_->core->key) Shared().by_key.erase(state_->core->key);
      state_->core->key = 0;
    }
    state_->TearDown(env);
    return Fail(env, kOk);
  }

  // walk() -> { start, size, payload, usable, state, region, requested, base } | status:
  // the design's walk (allocator.h), offsets from the arena's base (addresses on
  // mmap, base 0); requested: the bytes this thread's Buffer of that block asked
  // for, NaN where the block is not one of them.
  Napi::Value Walk(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (state_->Gone()) return Fail(env, kDestroyed);
    Core *c = state_->core;
    if (!c->ops->walk) return Fail(env, kForeign);
    WalkColumns w(c->use_arena ? (uintptr_t)c->arena.base : 0);
    c->ops->walk(c->heap, WalkColumns::Add, &w);
    std::unordered_map<double, double> asked;
    for (auto &entry : state_->live) asked.emplace((double)((uintptr_t)entry.second->ptr - w.base), (double)entry.second->size);
    size_t n = w.start.size();
    Napi::Object o = w.ToJs(env);
    Napi::Float64Array req = Napi::Float64Array::New(env, n);
    for (size_t i = 0; i < n; i++) {
      auto it = w.state[i] == HL_WALK_USED ? asked.find(w.payload[i]) : asked.end();
      req[i] = it == asked.end() ? NAN : it->second;
    }
    o.Set("requested", req);
    o.Set("base", (double)w.base);
    o.Set("pageSize", (double)c->hooks.page_size);
    return o;
  }

  // share() -> key | -status: from now on other threads may hold this heap
  // (new NativeHeap(key)); its lock and counters' lock are taken from here on.
  // Not for debug heaps (their requester names live in one thread) or region
  // heaps (their views cannot cross threads).
  Napi::Value Share(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (state_->Gone()) return Napi::Number::New(env, -(double)kDestroyed);
    Core *c = state_->core;
    if (c->debug || state_->region_made) return Napi::Number::New(env, -(double)kForeign);
    std::lock_guard<std::mutex> g(Shared().mu);
    if (!c->key) {
      // set on the owning thread, between its calls, before any other thread can see the key
      c->shared.store(true);
      c->pages.lock.solo = 0;
      c->arena.lock.solo = 0;
      c->key = ++Shared().next;
      Shared().by_key.emplace(c->key, c);
    }
    return Napi::Number::New(env, (double)c->key);
  }
};

// detachArrayBuffer(ab) -> status: the ts engine's destroy() detaches its heap's
// ArrayBuffer, so that no view of a destroyed heap reads or writes it. (Its
// buffer is marked untransferable, so JS alone cannot detach it on Node 20.)
Napi::Value DetachArrayBuffer(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  bool detachable = info.Length() > 0 && info[0].IsArrayBuffer();
  if (detachable) {
    bool detached = false;
    napi_is_detached_arraybuffer(env, info[0], &detached);
    if (!detached && napi_detach_arraybuffer(env, info[0]) != napi_ok) detachable = false;
  }
  return Napi::Number::New(env, detachable ? kOk : kForeign);
}

// externalBufferFloor(size) -> Buffer: an external Buffer over static zeroed
// bytes, with a finalizer that does nothing, and no allocator, ownership record
// or reference behind it: what Node itself charges for one detachable native
// Buffer, which the bench times (created, touched, detached) as the floor under
// createHeap's safe path. At most kFloorBytes.
constexpr size_t kFloorBytes = (size_t)1 << 20;
alignas(16) uint8_t g_floor_bytes[kFloorBytes];
void FinalizeNothing(napi_env, void *, void *) {}
Napi::Value ExternalBufferFloor(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  double size_d = info.Length() > 0 && info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
  if (!(size_d >= 0 && size_d <= (double)kFloorBytes)) return Napi::Number::New(env, kInvalidSize);
  napi_value buf;
  if (napi_create_external_buffer(env, (size_t)size_d, g_floor_bytes, FinalizeNothing, nullptr, &buf) != napi_ok)
    return Napi::Number::New(env, kExternalBuffersRefused);
  return Napi::Value(env, buf);
}

}  // namespace

void ExportHeap(Napi::Env env, Napi::Object exports) {
  exports.Set("externalBufferFloor", Napi::Function::New(env, ExternalBufferFloor, "externalBufferFloor"));
  exports.Set("NativeHeap", NativeHeap::Init(env));
  exports.Set("detachArrayBuffer", Napi::Function::New(env, DetachArrayBuffer, "detachArrayBuffer"));
}
