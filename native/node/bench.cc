// bench.cc — bench(target, traces, options) and benchClock(): the benchmark's
// replay (native/bench/bench.c), one call per run.
#include <cstring>
#include <string>
#include <vector>

#include "node.h"
extern "C" {
#include "../replay/replay.h"
#include "../bench/bench.h"
}

namespace {

// bench(target, traces, options) -> result | { error }. The benchmark's replay
// (native/bench/bench.c): one trace per thread on one shared heap of `target` (a
// heaplab allocator, "glibc", or a peer loaded with dlopen), timed in C.
// options: { touch, latency, throughputRuns, maxSamples, path }
Napi::Value BenchHistogram(Napi::Env env, const hl_bench_histogram &h) {
  size_t used = 0;
  for (size_t i = 0; i < HL_BENCH_BUCKETS; i++) used += h.count[i] != 0;
  Napi::Float64Array lower = Napi::Float64Array::New(env, used), count = Napi::Float64Array::New(env, used);
  for (size_t i = 0, k = 0; i < HL_BENCH_BUCKETS; i++) {
    if (!h.count[i]) continue;
    lower[k] = hl_bench_bucket_ns(i);
    count[k++] = (double)h.count[i];
  }
  Napi::Object o = Napi::Object::New(env);
  o.Set("lowerNs", lower);
  o.Set("count", count);
  o.Set("total", (double)h.total);
  o.Set("maxNs", h.max_ns);
  return o;
}

Napi::Value Bench(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>().Utf8Value();
  Napi::Array list = info[1].As<Napi::Array>();
  Napi::Object opts = info[2].As<Napi::Object>();
  auto error = [&](const char *msg) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("error", msg);
    return o;
  };
  std::string path = opts.Has("path") && opts.Get("path").IsString() ? opts.Get("path").As<Napi::String>().Utf8Value() : "";
  char err[1024] = "";
  const hl_bench_target *target = hl_bench_target_open(name.c_str(), path.empty() ? nullptr : path.c_str(), err, sizeof err);
  if (!target) return error(err);
  hl_trace_view views[8];
  uint32_t n = list.Length();
  if (n < 1 || n > 8) return error("1 to 8 traces (one per thread)");
  for (uint32_t k = 0; k < n; k++) {
    Napi::Object trace = list.Get(k).As<Napi::Object>();
    auto op = trace.Get("op").As<Napi::Uint8Array>();
    views[k] = hl_trace_view{op.ElementLength(), op.Data(), trace.Get("id").As<Napi::Uint32Array>().Data(),
                             trace.Get("size").As<Napi::Float64Array>().Data(),
                             trace.Get("alignLog2").As<Napi::Uint8Array>().Data(),
                             (uint32_t)trace.Get("maxId").As<Napi::Number>().Uint32Value()};
  }
  hl_bench_config config{views, n, opts.Get("touch").ToBoolean().Value() ? 1 : 0, opts.Get("latency").ToBoolean().Value() ? 1 : 0,
                         (size_t)opts.Get("throughputRuns").As<Napi::Number>().Uint32Value(),
                         (size_t)opts.Get("maxSamples").As<Napi::Number>().Uint32Value()};
  hl_bench_result *r = static_cast<hl_bench_result *>(calloc(1, sizeof(hl_bench_result)));
  if (!r) return error("out of memory");
  if (hl_bench_run(target, &config, r, err, sizeof err) != 0) {
    free(r);
    return error(err);
  }
  Napi::Object out = Napi::Object::New(env);
  out.Set("elapsedNs", r->elapsed_ns);
  out.Set("latencyElapsedNs", r->latency_elapsed_ns);
  out.Set("ops", (double)r->ops);
  out.Set("failures", (double)r->failures);
  out.Set("peakLive", r->peak_live);
  out.Set("peakMapped", r->peak_mapped);
  out.Set("baselineMapped", r->baseline_mapped);
  out.Set("peakRss", r->peak_rss);
  out.Set("memorySource", hl_bench_target_memory_source(target));
  out.Set("path", hl_bench_target_path(target));
  out.Set("alloc", BenchHistogram(env, r->alloc_hist));
  out.Set("free", BenchHistogram(env, r->free_hist));
  out.Set("allocCrossed", BenchHistogram(env, r->alloc_crossed_hist));
  out.Set("freeCrossed", BenchHistogram(env, r->free_crossed_hist));
  Napi::Float64Array samples = Napi::Float64Array::New(env, r->sample_count * 4);  // [op, mapped, live, rss]...
  for (size_t i = 0; i < r->sample_count; i++) {
    samples[4 * i] = r->samples[i].op;
    samples[4 * i + 1] = r->samples[i].mapped;
    samples[4 * i + 2] = r->samples[i].live;
    samples[4 * i + 3] = r->samples[i].rss;
  }
  out.Set("samples", samples);
  free(r);
  return out;
}

// benchClock() -> { name, nsPerTick, overheadNs, minOverheadNs }: the clock bench() times with.
Napi::Value BenchClock(const Napi::CallbackInfo &info) {
  const hl_bench_clock_info *c = hl_bench_clock();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("name", c->name);
  o.Set("nsPerTick", c->ns_per_tick);
  o.Set("overheadNs", c->overhead_ns);
  o.Set("minOverheadNs", c->min_overhead_ns);
  return o;
}

}  // namespace

void ExportBench(Napi::Env env, Napi::Object exports) {
  exports.Set("bench", Napi::Function::New(env, Bench, "bench"));
  exports.Set("benchClock", Napi::Function::New(env, BenchClock, "benchClock"));
}
