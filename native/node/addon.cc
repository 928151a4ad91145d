// addon.cc — the N-API binding's entry: Init, and the tables the TypeScript side
// mirrors (statuses, trace ops, allocator names, page-cache defaults). Each
// exported object lives in its own file: heap.cc, replay.cc, bench.cc.
#include "node.h"
extern "C" {
#include "../allocator.h"
#include "../pages/pages.h"
#include "../trace/trace.h"
}

namespace {

const struct { const char *name; HlStatus code; } kStatusNames[] = {
    {"ok", kOk}, {"outOfMemory", kOutOfMemory}, {"invalidSize", kInvalidSize},
    {"invalidAlignment", kInvalidAlignment}, {"notLive", kNotLive}, {"destroyed", kDestroyed},
    {"externalBuffersRefused", kExternalBuffersRefused}, {"unknownAllocator", kUnknownAllocator},
    {"invalidPageSize", kInvalidPageSize}, {"notDebug", kNotDebug}, {"foreign", kForeign},
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  ExportHeap(env, exports);
  ExportReplay(env, exports);
  ExportBench(env, exports);
  Napi::Array kinds = Napi::Array::New(env);
  uint32_t i = 0;
  for (const hl_allocator *const *a = hl_allocators; *a; a++) kinds.Set(i++, (*a)->name);
  exports.Set("allocators", kinds);
  exports.Set("systemPageSize", (double)hl_system_page_size());
  {
    // the single homes of two concepts the TypeScript side mirrors (checked by a test)
    Napi::Object statuses = Napi::Object::New(env);
    for (const auto &s : kStatusNames) statuses.Set(s.name, (double)s.code);
    exports.Set("statuses", statuses);
    Napi::Object ops = Napi::Object::New(env);
    ops.Set("malloc", (double)HL_TRACE_MALLOC);
    ops.Set("calloc", (double)HL_TRACE_CALLOC);
    ops.Set("memalign", (double)HL_TRACE_MEMALIGN);
    ops.Set("realloc", (double)HL_TRACE_REALLOC);
    ops.Set("free", (double)HL_TRACE_FREE);
    exports.Set("traceOps", ops);
  }
  {
    hl_page_cache_config d = hl_page_cache_defaults();
    Napi::Object o = Napi::Object::New(env);
    o.Set("enabled", Napi::Boolean::New(env, d.enabled != 0));
    o.Set("floor", (double)d.floor);
    o.Set("percent", (double)d.percent);
    o.Set("decayMs", (double)d.decay_ms);
    o.Set("runMax", (double)d.run_max);
    o.Set("prefault", (double)d.prefault);
    exports.Set("pageCacheDefaults", o);
  }
  return exports;
}

}  // namespace

NODE_API_MODULE(heaplab, Init)
