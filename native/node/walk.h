// walk.h — a heap's walk (allocator.h's hl_walker) collected into the columns JS
// reads (lib/walk.ts): shared by replay() (replay.cc) and NativeHeap#walk (heap.cc).
#ifndef HEAPLAB_NODE_WALK_H
#define HEAPLAB_NODE_WALK_H

#include <cstring>
#include <vector>

#include "node.h"

struct WalkColumns {
  uintptr_t base;  // start and payload are counted from here (0: addresses)
  std::vector<double> start, size, payload, usable;
  std::vector<uint8_t> state;
  std::vector<uint32_t> region;

  explicit WalkColumns(uintptr_t from) : base(from) {}

  static void Add(void *start, size_t size, void *payload, size_t usable, int state, unsigned region, void *user) {
    WalkColumns *w = static_cast<WalkColumns *>(user);
    w->start.push_back((double)((uintptr_t)start - w->base));
    w->size.push_back((double)size);
    w->payload.push_back((double)((uintptr_t)payload - w->base));
    w->usable.push_back((double)usable);
    w->state.push_back((uint8_t)state);
    w->region.push_back(region);
  }

  static Napi::Float64Array Doubles(Napi::Env env, const std::vector<double> &v) {
    Napi::Float64Array a = Napi::Float64Array::New(env, v.size());
    if (!v.empty()) memcpy(a.Data(), v.data(), v.size() * sizeof(double));
    return a;
  }

  Napi::Object ToJs(Napi::Env env) const {
    Napi::Object o = Napi::Object::New(env);
    o.Set("start", Doubles(env, start));
    o.Set("size", Doubles(env, size));
    o.Set("payload", Doubles(env, payload));
    o.Set("usable", Doubles(env, usable));
    Napi::Uint8Array st = Napi::Uint8Array::New(env, state.size());
    if (!state.empty()) memcpy(st.Data(), state.data(), state.size());
    o.Set("state", st);
    Napi::Uint32Array rg = Napi::Uint32Array::New(env, region.size());
    if (!region.empty()) memcpy(rg.Data(), region.data(), region.size() * sizeof(uint32_t));
    o.Set("region", rg);
    return o;
  }
};

#endif
