/* rnnjit C API: opaque handles and status codes over the C++ engine, for FFI (Python
 * ctypes, Rust, Julia). Every function returns RNNJIT_OK or a status; the message of the
 * calling thread's last failure is rnnjit_last_error(). See rnnjit.hpp for the semantics. */
#ifndef RNNJIT_H
#define RNNJIT_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Same values as rnnjit::ErrorCode. */
typedef enum rnnjit_status {
  RNNJIT_OK = 0,
  RNNJIT_INVALID_ARGUMENT = 1,
  RNNJIT_NO_DRIVER = 2,
  RNNJIT_NO_DEVICE = 3,
  RNNJIT_COMPILE_FAILED = 4,
  RNNJIT_LAUNCH_FAILED = 5,
  RNNJIT_CACHE_ERROR = 6,
  RNNJIT_OUT_OF_MEMORY = 7,
  RNNJIT_UNSUPPORTED = 8,
  RNNJIT_INTERNAL = 9
} rnnjit_status;

typedef enum rnnjit_precision {
  RNNJIT_PRECISION_DEFAULT = 0,
  RNNJIT_PRECISION_FP32 = 1,
  RNNJIT_PRECISION_TF32 = 2,
  RNNJIT_PRECISION_BF16 = 3
} rnnjit_precision;

/** The storage type of every tensor of a problem; zero is f32. */
typedef enum rnnjit_dtype {
  RNNJIT_DTYPE_F32 = 0,
  RNNJIT_DTYPE_BF16 = 1
} rnnjit_dtype;

/** Zero-initialise, then set the sizes: precision DEFAULT and dtype F32 are the zeros. */
typedef struct rnnjit_problem {
  int64_t batch, input, hidden, output;
  rnnjit_precision precision;
  rnnjit_dtype dtype;
} rnnjit_problem;

/** What the first call for an untuned problem does (rnnjit::TuningMode). */
typedef enum rnnjit_tuning {
  RNNJIT_TUNING_DEFAULT = 0,    /**< $RNNJIT_TUNING, else blocking */
  RNNJIT_TUNING_BLOCKING = 1,   /**< compile and time the candidates, then run the winner */
  RNNJIT_TUNING_BACKGROUND = 2  /**< run a prebuilt generic plan at once; time the candidates on a thread of the engine */
} rnnjit_tuning;

/** Zero-initialise, then set what you need: device 0, caches from the environment,
 *  tf32 default, log level and tuning mode from the environment. Fields are only ever
 *  appended: a caller built against an older rnnjit.h must be rebuilt against this one. */
typedef struct rnnjit_engine_options {
  int device;
  const char* cache_path;               /**< NULL: $RNNJIT_CACHE or the default; "off": memory */
  rnnjit_precision default_precision;   /**< DEFAULT means tf32 */
  int log_level;                        /**< 0: environment; 1 trace .. 6 off */
  int no_pointer_checks;                /**< nonzero: skip the driver's pointer checks (EngineOptions::check_pointers) */
  const char* system_cache_path;        /**< NULL: $RNNJIT_SYSTEM_CACHE or /usr/local/share/rnnjit/system.sqlite; "off": none */
  rnnjit_tuning tuning;                 /**< DEFAULT: $RNNJIT_TUNING, else blocking */
} rnnjit_engine_options;

/** Where a problem's plan stands in an engine (rnnjit::PlanState). */
typedef enum rnnjit_plan_state {
  RNNJIT_PLAN_NONE = 0,     /**< no call has needed it yet */
  RNNJIT_PLAN_UNTUNED = 1,  /**< picked untimed inside graph capture; the next uncaptured call tunes */
  RNNJIT_PLAN_TUNING = 2,   /**< background tuning: a first plan (the generic one) runs meanwhile */
  RNNJIT_PLAN_TUNED = 3     /**< tuned, cached or pinned */
} rnnjit_plan_state;

typedef struct rnnjit_engine rnnjit_engine;
typedef struct rnnjit_cell rnnjit_cell;

/** "0.1.0" */
const char* rnnjit_version(void);
/** Hash of the embedded kernel templates: a cached tuning made with others is stale. */
const char* rnnjit_template_hash(void);
/** Static text for a status ("invalid_argument", ...). */
const char* rnnjit_status_string(rnnjit_status status);
/** The calling thread's last failure message; "" after a success. */
const char* rnnjit_last_error(void);

rnnjit_status rnnjit_engine_create(const rnnjit_engine_options* options, rnnjit_engine** engine);
void rnnjit_engine_destroy(rnnjit_engine* engine);

/** One step; pointers are device memory of the problem's dtype, stream a cudaStream_t/CUstream
 *  (NULL: default). */
rnnjit_status rnnjit_step(rnnjit_engine* engine, const rnnjit_problem* problem, const void* w1, const void* b1,
                          const void* w2, const void* b2, const void* x, const void* h, void* h_out, void* y,
                          void* stream);
/** `steps` steps in one call (rnnjit::Engine::rnn_sequence): x steps×B×I time-major, h0 B×H,
 *  y steps×B×O, h_n B×H (may alias h0), h_all steps×B×H or NULL. */
rnnjit_status rnnjit_sequence(rnnjit_engine* engine, const rnnjit_problem* problem, int64_t steps, const void* w1,
                              const void* b1, const void* w2, const void* b2, const void* x, const void* h0, void* y,
                              void* h_n, void* h_all, void* stream);
/** Tunes now on random scratch data; force != 0 retunes a cached problem. */
rnnjit_status rnnjit_tune(rnnjit_engine* engine, const rnnjit_problem* problem, int force);
/** The same for sequences of `steps` steps (rnnjit::Engine::tune_sequence). */
rnnjit_status rnnjit_tune_sequence(rnnjit_engine* engine, const rnnjit_problem* problem, int64_t steps, int force);

/** The plan `problem` runs with now: *state and the config's name (*config, "" for NONE; valid until
 *  the calling thread's next call of this function); either out-pointer may be NULL. */
rnnjit_status rnnjit_engine_plan(const rnnjit_engine* engine, const rnnjit_problem* problem, rnnjit_plan_state* state,
                                 const char** config);

/** The SQLite file the engine's cache uses, or ":memory:". *path stays valid until the calling
 *  thread's next call of this function. */
rnnjit_status rnnjit_engine_cache_path(const rnnjit_engine* engine, const char** path);
/** The engine's GPU: its name ("NVIDIA H100 80GB HBM3"), NVRTC target ("sm_90a") and tuning-cache
 *  key; each out-pointer may be NULL. The strings live as long as the engine. */
rnnjit_status rnnjit_engine_device(const rnnjit_engine* engine, const char** name, const char** arch,
                                   const char** gpu_key);
/** *bound = the relative error (‖out − ref‖₂ / ‖ref‖₂ against float64 of the same inputs) every
 *  kernel of `precision` stays within (rnnjit::error_bound); DEFAULT is INVALID_ARGUMENT. Needs no
 *  driver. */
rnnjit_status rnnjit_error_bound(rnnjit_precision precision, double* bound);
/** Where an engine created with options->cache_path == option (NULL: none) keeps its cache:
 *  $RNNJIT_CACHE, $XDG_CACHE_HOME/rnnjit/cache.sqlite or ~/.cache/rnnjit/cache.sqlite, or
 *  "off". Needs no driver. *path stays valid until the calling thread's next call of this function. */
rnnjit_status rnnjit_cache_resolve_path(const char* option, const char** path);

rnnjit_status rnnjit_cell_create(rnnjit_engine* engine, const rnnjit_problem* problem, const void* w1,
                                 const void* b1, const void* w2, const void* b2, rnnjit_cell** cell);
void rnnjit_cell_destroy(rnnjit_cell* cell);
rnnjit_status rnnjit_cell_reset(rnnjit_cell* cell, const void* h0, void* stream);
rnnjit_status rnnjit_cell_step(rnnjit_cell* cell, const void* x, void* y, void* stream);
/** `steps` steps from the cell's state (rnnjit::RnnCell::sequence); h_all may be NULL. */
rnnjit_status rnnjit_cell_sequence(rnnjit_cell* cell, int64_t steps, const void* x, void* y, void* h_all, void* stream);
/** The current B×H state, or NULL for a NULL cell. */
const void* rnnjit_cell_hidden(const rnnjit_cell* cell);

#ifdef __cplusplus
}
#endif

#endif /* RNNJIT_H */
