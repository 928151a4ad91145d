// addon.cc — the N-API binding: thin. lib/heap.ts validates every argument; this
// file trusts their types and ranges, owns the per-allocation tokens and turns
// allocator results into Buffers or integer statuses (lib/errors.ts maps those).
//
// Lifetime: every Buffer handed to JS owns a Token. The explicit free and the
// Buffer's finalizer both go through the Token, so a block is freed exactly once
// whatever order they run in (Node runs external-buffer finalizers late, after
// the address may have been reused). A Token holds a reference on its HeapState,
// so the heap outlives every finalizer that could still touch it.
#include <napi.h>

#include <cstdint>
#include <cstring>
#include <unordered_map>

extern "C" {
#include "allocator.h"
#include "pages.h"
}

namespace {

// Must match lib/errors.ts.
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
};

constexpr double kMaxRequest = 9007199254740991.0;  // 2**53 - 1; the allocator bounds it further

struct HeapState;

struct Token {
  HeapState *heap;
  void *ptr;
  size_t size;  // bytes requested; the Buffer's length
  double id;
  napi_ref buffer;  // weak: lets destroy() detach a Buffer JS still holds
  bool freed;
};

struct Stats {
  double bytesInUse = 0, peakBytesInUse = 0, blocksInUse = 0, peakBlocksInUse = 0;
  double allocs = 0, frees = 0, reallocs = 0, failedAllocs = 0, finalized = 0;
};

struct HeapState {
  const hl_allocator *ops = nullptr;
  void *heap = nullptr;
  hl_mmap_pages pages{};
  hl_hooks hooks{};
  bool destroyed = false;
  size_t refs = 1;  // the JS wrapper + one per Token not yet finalized
  std::unordered_map<double, Token *> live;
  Stats stats;

  void Ref() { refs++; }
  void Unref() {
    if (--refs == 0) {
      TearDown(nullptr);
      delete this;
    }
  }

  // Gives every page back. Buffers JS still holds are detached first, so no
  // Buffer can ever reach unmapped memory.
  void TearDown(napi_env env) {
    if (destroyed) return;
    destroyed = true;
    for (auto &entry : live) {
      Token *t = entry.second;
      if (env && t->buffer) DetachRef(env, t->buffer);
      t->freed = true;
    }
    live.clear();
    if (heap) ops->destroy(heap);
    heap = nullptr;
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

  void CountAlloc(size_t size) {
    stats.allocs++;
    stats.bytesInUse += (double)size;
    stats.blocksInUse++;
    if (stats.bytesInUse > stats.peakBytesInUse) stats.peakBytesInUse = stats.bytesInUse;
    if (stats.blocksInUse > stats.peakBlocksInUse) stats.peakBlocksInUse = stats.blocksInUse;
  }
  void CountFree(size_t size) {
    stats.frees++;
    stats.bytesInUse -= (double)size;
    stats.blocksInUse--;
  }
};

void FinalizeBuffer(napi_env env, void * /*data*/, void *hint) {
  Token *t = static_cast<Token *>(hint);
  HeapState *h = t->heap;
  if (!t->freed && !h->destroyed) {
    h->ops->free(h->heap, t->ptr);
    h->CountFree(t->size);
    h->stats.finalized++;
    h->live.erase(t->id);
  }
  if (t->buffer) napi_delete_reference(env, t->buffer);
  delete t;
  h->Unref();
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
                       });
  }

  // new NativeHeap(kind, limit, pageSize); status() tells whether it came up.
  NativeHeap(const Napi::CallbackInfo &info) : Napi::ObjectWrap<NativeHeap>(info) {
    state_ = new HeapState();
    std::string kind = info[0].As<Napi::String>().Utf8Value();
    size_t limit = (size_t)info[1].As<Napi::Number>().DoubleValue();
    size_t page_size = (size_t)info[2].As<Napi::Number>().DoubleValue();
    state_->ops = hl_allocator_find(kind.c_str());
    if (!state_->ops) {
      init_status_ = kUnknownAllocator;
      state_->destroyed = true;
      return;
    }
    if (hl_mmap_pages_init(&state_->pages, page_size, limit) != 0) {
      init_status_ = kInvalidPageSize;
      state_->destroyed = true;
      return;
    }
    state_->hooks = hl_mmap_pages_hooks(&state_->pages, 1);
    state_->heap = state_->ops->create(&state_->hooks);
    if (!state_->heap) {
      init_status_ = kOutOfMemory;
      state_->destroyed = true;
    }
  }

  ~NativeHeap() override { state_->Unref(); }

 private:
  HeapState *state_;
  int32_t init_status_ = kOk;

  Napi::Value Status(const Napi::CallbackInfo &info) { return Napi::Number::New(info.Env(), init_status_); }

  Napi::Value Fail(Napi::Env env, HlStatus s) { return Napi::Number::New(env, s); }

  // Wraps ptr in an external Buffer owned by a new Token.
  Napi::Value Wrap(Napi::Env env, double id, void *ptr, size_t size) {
    Token *t = new Token{state_, ptr, size, id, nullptr, false};
    napi_value buf;
    napi_status st = napi_create_external_buffer(env, size, ptr, FinalizeBuffer, t, &buf);
    if (st != napi_ok) {
      // V8 sandbox builds refuse external memory: say so rather than copy silently.
      delete t;
      return Napi::Value();
    }
    state_->Ref();
    napi_create_reference(env, buf, 0, &t->buffer);
    state_->live.emplace(id, t);
    return Napi::Value(env, buf);
  }

  // alloc(id, size, align, zero) -> Buffer | status
  Napi::Value Alloc(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (state_->destroyed) return Fail(env, kDestroyed);
    double id = info[0].As<Napi::Number>().DoubleValue();
    double size_d = info[1].As<Napi::Number>().DoubleValue();
    double align_d = info[2].As<Napi::Number>().DoubleValue();
    bool zero = info[3].ToBoolean().Value();
    if (!(size_d >= 0 && size_d <= kMaxRequest)) return Fail(env, kInvalidSize);
    size_t size = (size_t)size_d, align = (size_t)align_d;
    if (align == 0 || (align & (align - 1))) return Fail(env, kInvalidAlignment);
    void *ptr;
    if (align <= 16)
      ptr = zero ? state_->ops->calloc(state_->heap, 1, size) : state_->ops->malloc(state_->heap, size);
    else {
      ptr = state_->ops->memalign(state_->heap, align, size);
      if (ptr && zero) memset(ptr, 0, size);
    }
    if (!ptr) {
      state_->stats.failedAllocs++;
      return Fail(env, kOutOfMemory);
    }
    Napi::Value buf = Wrap(env, id, ptr, size);
    if (buf.IsEmpty()) {
      state_->ops->free(state_->heap, ptr);
      return Fail(env, kExternalBuffersRefused);
    }
    state_->CountAlloc(size);
    return buf;
  }

  Token *Live(double id) {
    auto it = state_->live.find(id);
    return it == state_->live.end() ? nullptr : it->second;
  }

  // free(id, buffer) -> status
  Napi::Value Free(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (state_->destroyed) return Fail(env, kDestroyed);
    Token *t = Live(info[0].As<Napi::Number>().DoubleValue());
    if (!t) return Fail(env, kNotLive);
    HeapState::Detach(env, info[1]);
    state_->ops->free(state_->heap, t->ptr);
    state_->CountFree(t->size);
    t->freed = true;
    state_->live.erase(t->id);
    return Fail(env, kOk);
  }

  // realloc(id, newId, size, buffer) -> Buffer | status; on failure the old
  // Buffer stays valid and attached, like C realloc.
  Napi::Value Realloc(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (state_->destroyed) return Fail(env, kDestroyed);
    Token *t = Live(info[0].As<Napi::Number>().DoubleValue());
    if (!t) return Fail(env, kNotLive);
    double new_id = info[1].As<Napi::Number>().DoubleValue();
    double size_d = info[2].As<Napi::Number>().DoubleValue();
    if (!(size_d >= 0 && size_d <= kMaxRequest)) return Fail(env, kInvalidSize);
    size_t size = (size_t)size_d;
    void *ptr = state_->ops->realloc(state_->heap, t->ptr, size);
    if (!ptr) {
      state_->stats.failedAllocs++;
      return Fail(env, kOutOfMemory);
    }
    // The old block is gone (moved or resized): retire its Token and Buffer first.
    HeapState::Detach(env, info[3]);
    state_->CountFree(t->size);
    state_->stats.frees--;  // a realloc is not a free + alloc in the counters
    t->freed = true;
    state_->live.erase(t->id);
    Napi::Value buf = Wrap(env, new_id, ptr, size);
    if (buf.IsEmpty()) {
      state_->ops->free(state_->heap, ptr);
      state_->stats.blocksInUse++;  // balance CountFree below
      state_->CountFree(0);
      return Fail(env, kExternalBuffersRefused);
    }
    state_->CountAlloc(size);
    state_->stats.allocs--;
    state_->stats.reallocs++;
    return buf;
  }

  // usableSize(id) -> bytes | -status
  Napi::Value UsableSize(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (state_->destroyed) return Napi::Number::New(env, -kDestroyed);
    Token *t = Live(info[0].As<Napi::Number>().DoubleValue());
    if (!t) return Napi::Number::New(env, -kNotLive);
    return Napi::Number::New(env, (double)state_->ops->usable_size(state_->heap, t->ptr));
  }

  Napi::Value Stats(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    const ::Stats &s = state_->stats;
    o.Set("bytesMapped", (double)__atomic_load_n(&state_->pages.bytes_mapped, __ATOMIC_RELAXED));
    o.Set("peakBytesMapped", (double)state_->pages.peak_bytes_mapped);
    o.Set("pageMaps", (double)state_->pages.map_calls);
    o.Set("pageUnmaps", (double)state_->pages.unmap_calls);
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
    if (state_->destroyed) return Fail(env, kDestroyed);
    Napi::Object o = Napi::Object::New(env);
    o.Set("invariants", (double)state_->ops->check(state_->heap));
    // Our own record cross-checks the allocator: each live block must still
    // be at least as large as what JS was given, and 16-byte aligned.
    Napi::Array bad = Napi::Array::New(env);
    uint32_t n = 0;
    for (auto &entry : state_->live) {
      Token *t = entry.second;
      size_t usable = state_->ops->usable_size(state_->heap, t->ptr);
      if (usable < t->size || ((uintptr_t)t->ptr & 15)) bad.Set(n++, t->id);
    }
    o.Set("blocks", bad);
    return o;
  }

  Napi::Value Destroy(const Napi::CallbackInfo &info) {
    Napi::Env env = info.Env();
    if (state_->destroyed) return Fail(env, kDestroyed);
    state_->TearDown(env);
    return Fail(env, kOk);
  }
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("NativeHeap", NativeHeap::Init(env));
  Napi::Array kinds = Napi::Array::New(env);
  uint32_t i = 0;
  for (const hl_allocator *const *a = hl_allocators; *a; a++) kinds.Set(i++, (*a)->name);
  exports.Set("allocators", kinds);
  exports.Set("systemPageSize", (double)hl_system_page_size());
  return exports;
}

}  // namespace

NODE_API_MODULE(heaplab, Init)
