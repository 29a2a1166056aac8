// The C API: every C++ exception becomes a status and a thread-local message.
#include "rnnjit/rnnjit.h"

#include <limits>
#include <new>
#include <optional>
#include <string>

#include "rnnjit/cache/store.hpp"
#include "rnnjit/rnnjit.hpp"
#include "rnnjit/version.hpp"

struct rnnjit_engine {
  rnnjit::Engine engine;
};
struct rnnjit_cell {
  rnnjit::RnnCell cell;
};

namespace {

thread_local std::string last_error;
thread_local std::string path_text;  // what rnnjit_engine_cache_path / rnnjit_cache_resolve_path return
thread_local std::string config_text;  // what rnnjit_engine_plan returns

template <typename F>
rnnjit_status guarded(F&& f) {
  try {
    f();
    last_error.clear();
    return RNNJIT_OK;
  } catch (const rnnjit::Error& e) {
    last_error = e.what();
    return static_cast<rnnjit_status>(e.code());
  } catch (const std::bad_alloc&) {
    last_error = "out of host memory";
    return RNNJIT_OUT_OF_MEMORY;
  } catch (const std::exception& e) {
    last_error = e.what();
    return RNNJIT_INTERNAL;
  } catch (...) {  // nothing crosses the C boundary
    last_error = "an exception of no std::exception type";
    return RNNJIT_INTERNAL;
  }
}

void require(const void* p, const char* name) {
  if (!p) throw rnnjit::Error(rnnjit::ErrorCode::InvalidArgument, std::string(name) + " is null");
}

rnnjit::Precision precision(rnnjit_precision p) {
  switch (p) {
    case RNNJIT_PRECISION_DEFAULT: return rnnjit::Precision::Default;
    case RNNJIT_PRECISION_FP32: return rnnjit::Precision::FP32;
    case RNNJIT_PRECISION_TF32: return rnnjit::Precision::TF32;
    case RNNJIT_PRECISION_BF16: return rnnjit::Precision::BF16;
  }
  throw rnnjit::Error(rnnjit::ErrorCode::InvalidArgument, "precision " + std::to_string(int(p)) + " is not a rnnjit_precision");
}

rnnjit::DType dtype(rnnjit_dtype t) {
  switch (t) {
    case RNNJIT_DTYPE_F32: return rnnjit::DType::F32;
    case RNNJIT_DTYPE_BF16: return rnnjit::DType::BF16;
  }
  throw rnnjit::Error(rnnjit::ErrorCode::InvalidArgument, "dtype " + std::to_string(int(t)) + " is not a rnnjit_dtype");
}

std::optional<rnnjit::TuningMode> tuning(rnnjit_tuning t) {
  switch (t) {
    case RNNJIT_TUNING_DEFAULT: return std::nullopt;
    case RNNJIT_TUNING_BLOCKING: return rnnjit::TuningMode::Blocking;
    case RNNJIT_TUNING_BACKGROUND: return rnnjit::TuningMode::Background;
  }
  throw rnnjit::Error(rnnjit::ErrorCode::InvalidArgument, "tuning " + std::to_string(int(t)) + " is not a rnnjit_tuning");
}

rnnjit_plan_state plan_state(rnnjit::PlanState s) {
  switch (s) {
    case rnnjit::PlanState::None: return RNNJIT_PLAN_NONE;
    case rnnjit::PlanState::Untuned: return RNNJIT_PLAN_UNTUNED;
    case rnnjit::PlanState::Tuning: return RNNJIT_PLAN_TUNING;
    case rnnjit::PlanState::Tuned: return RNNJIT_PLAN_TUNED;
  }
  throw rnnjit::Error(rnnjit::ErrorCode::Internal, "plan state " + std::to_string(int(s)) + " has no C value");
}

rnnjit::Problem problem_of(const rnnjit_problem* p) {
  require(p, "problem");
  return {p->batch, p->input, p->hidden, p->output, precision(p->precision), dtype(p->dtype)};
}

}  // namespace

extern "C" {

const char* rnnjit_version(void) {
  static const std::string v = rnnjit::version();
  return v.c_str();
}

const char* rnnjit_template_hash(void) {
  static const std::string h = rnnjit::template_hash();
  return h.c_str();
}

const char* rnnjit_status_string(rnnjit_status status) {
  return rnnjit::error_code_name(static_cast<rnnjit::ErrorCode>(status));
}

const char* rnnjit_last_error(void) { return last_error.c_str(); }

rnnjit_status rnnjit_engine_create(const rnnjit_engine_options* options, rnnjit_engine** engine) {
  return guarded([&] {
    if (engine) *engine = nullptr;  // first: whatever fails leaves NULL
    require(engine, "engine");
    rnnjit::EngineOptions o;
    if (options) {
      o.device = options->device;
      if (options->cache_path) o.cache_path = options->cache_path;
      if (options->system_cache_path) o.system_cache_path = options->system_cache_path;
      o.tuning = tuning(options->tuning);
      o.default_precision = precision(options->default_precision);  // DEFAULT: the engine takes it as tf32
      if (options->log_level < 0 || options->log_level > 6)
        throw rnnjit::Error(rnnjit::ErrorCode::InvalidArgument, "log_level " + std::to_string(options->log_level) + " is not 0..6");
      if (options->log_level) o.log_level = static_cast<rnnjit::LogLevel>(options->log_level - 1);
      o.check_pointers = options->no_pointer_checks == 0;
    }
    *engine = new rnnjit_engine{rnnjit::Engine(o)};
  });
}

void rnnjit_engine_destroy(rnnjit_engine* engine) { delete engine; }

rnnjit_status rnnjit_step(rnnjit_engine* engine, const rnnjit_problem* problem, const void* w1, const void* b1,
                          const void* w2, const void* b2, const void* x, const void* h, void* h_out, void* y,
                          void* stream) {
  return guarded([&] {
    require(engine, "engine");
    engine->engine.rnn_step(problem_of(problem), {w1, b1, w2, b2}, x, h, h_out, y, static_cast<rnnjit::Stream>(stream));
  });
}

rnnjit_status rnnjit_sequence(rnnjit_engine* engine, const rnnjit_problem* problem, int64_t steps, const void* w1,
                              const void* b1, const void* w2, const void* b2, const void* x, const void* h0, void* y,
                              void* h_n, void* h_all, void* stream) {
  return guarded([&] {
    require(engine, "engine");
    engine->engine.rnn_sequence(problem_of(problem), steps, {w1, b1, w2, b2}, x, h0, y, h_n, h_all,
                                static_cast<rnnjit::Stream>(stream));
  });
}

rnnjit_status rnnjit_tune(rnnjit_engine* engine, const rnnjit_problem* problem, int force) {
  return guarded([&] {
    require(engine, "engine");
    engine->engine.tune(problem_of(problem), force != 0);
  });
}

rnnjit_status rnnjit_tune_sequence(rnnjit_engine* engine, const rnnjit_problem* problem, int64_t steps, int force) {
  return guarded([&] {
    require(engine, "engine");
    engine->engine.tune_sequence(problem_of(problem), steps, force != 0);
  });
}

rnnjit_status rnnjit_engine_plan(const rnnjit_engine* engine, const rnnjit_problem* problem, rnnjit_plan_state* state,
                                 const char** config) {
  return guarded([&] {
    if (state) *state = RNNJIT_PLAN_NONE;  // first: whatever fails leaves NONE and NULL
    if (config) *config = nullptr;
    require(engine, "engine");
    const rnnjit::PlanInfo info = engine->engine.plan_info(problem_of(problem));
    if (state) *state = plan_state(info.state);
    if (config) {
      config_text = info.config;
      *config = config_text.c_str();
    }
  });
}

rnnjit_status rnnjit_engine_cache_path(const rnnjit_engine* engine, const char** path) {
  return guarded([&] {
    if (path) *path = nullptr;  // first: whatever fails leaves NULL
    require(engine, "engine");
    require(path, "path");
    path_text = engine->engine.cache_path();
    *path = path_text.c_str();
  });
}

rnnjit_status rnnjit_engine_device(const rnnjit_engine* engine, const char** name, const char** arch,
                                   const char** gpu_key) {
  return guarded([&] {
    for (const char** out : {name, arch, gpu_key})
      if (out) *out = nullptr;  // first: whatever fails leaves NULL
    require(engine, "engine");
    const rnnjit::DeviceInfo& d = engine->engine.device();
    if (name) *name = d.name.c_str();
    if (arch) *arch = d.arch.c_str();
    if (gpu_key) *gpu_key = d.key.c_str();
  });
}

rnnjit_status rnnjit_error_bound(rnnjit_precision p, double* bound) {
  return guarded([&] {
    require(bound, "bound");
    *bound = std::numeric_limits<double>::quiet_NaN();  // first: whatever fails leaves a bound no error meets
    *bound = rnnjit::error_bound(precision(p));
  });
}

rnnjit_status rnnjit_cache_resolve_path(const char* option, const char** path) {
  return guarded([&] {
    require(path, "path");
    *path = nullptr;
    path_text = rnnjit::cache::resolve_path(option ? std::optional<std::string>(option) : std::nullopt);
    *path = path_text.c_str();
  });
}

rnnjit_status rnnjit_cell_create(rnnjit_engine* engine, const rnnjit_problem* problem, const void* w1,
                                 const void* b1, const void* w2, const void* b2, rnnjit_cell** cell) {
  return guarded([&] {
    if (cell) *cell = nullptr;  // first: whatever fails leaves NULL, never a stale handle
    require(engine, "engine");
    require(cell, "cell");
    *cell = new rnnjit_cell{rnnjit::RnnCell(engine->engine, problem_of(problem), {w1, b1, w2, b2})};
  });
}

void rnnjit_cell_destroy(rnnjit_cell* cell) { delete cell; }

rnnjit_status rnnjit_cell_reset(rnnjit_cell* cell, const void* h0, void* stream) {
  return guarded([&] {
    require(cell, "cell");
    cell->cell.reset(h0, static_cast<rnnjit::Stream>(stream));
  });
}

rnnjit_status rnnjit_cell_step(rnnjit_cell* cell, const void* x, void* y, void* stream) {
  return guarded([&] {
    require(cell, "cell");
    cell->cell.step(x, y, static_cast<rnnjit::Stream>(stream));
  });
}

rnnjit_status rnnjit_cell_sequence(rnnjit_cell* cell, int64_t steps, const void* x, void* y, void* h_all, void* stream) {
  return guarded([&] {
    require(cell, "cell");
    cell->cell.sequence(steps, x, y, h_all, static_cast<rnnjit::Stream>(stream));
  });
}

const void* rnnjit_cell_hidden(const rnnjit_cell* cell) { return cell ? cell->cell.hidden() : nullptr; }

}  // extern "C"
