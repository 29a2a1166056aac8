// Runs with RNNJIT_DRIVER_LIBRARY pointing at a missing file (tests/engine.cmake), so the
// no-driver path is exercised on every machine.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <utility>

#include "rnnjit/rnnjit.h"
#include "rnnjit/rnnjit.hpp"

TEST_CASE("without a driver the engine says so", "[api]") {
  try {
    rnnjit::Engine engine;
    FAIL("an engine was made without a driver");
  } catch (const rnnjit::Error& e) {
    CHECK(e.code() == rnnjit::ErrorCode::NoDriver);
    CHECK_THAT(e.what(), Catch::Contains("no CUDA driver") && Catch::Contains("/nonexistent/libcuda.so.1"));
  }
}

TEST_CASE("an engine whose default precision is bf16 is refused before anything loads", "[api]") {
  rnnjit::EngineOptions o;
  o.default_precision = rnnjit::Precision::BF16;  // f32 problems could not take it
  try {
    rnnjit::Engine engine(o);
    FAIL("an engine was made with default precision bf16");
  } catch (const rnnjit::Error& e) {
    CHECK(e.code() == rnnjit::ErrorCode::InvalidArgument);
    CHECK_THAT(e.what(), Catch::Contains("default_precision bf16"));
  }
}

TEST_CASE("without a driver the C API returns RNNJIT_NO_DRIVER and a message", "[api]") {
  rnnjit_engine* engine = reinterpret_cast<rnnjit_engine*>(0x1);
  CHECK(rnnjit_engine_create(nullptr, &engine) == RNNJIT_NO_DRIVER);
  CHECK(engine == nullptr);
  CHECK_THAT(rnnjit_last_error(), Catch::Contains("no CUDA driver"));
  CHECK(std::strcmp(rnnjit_status_string(RNNJIT_NO_DRIVER), "no_driver") == 0);
}

TEST_CASE("the C API rejects null handles with INVALID_ARGUMENT", "[api]") {
  const rnnjit_problem p{8, 16, 16, 8, RNNJIT_PRECISION_TF32, RNNJIT_DTYPE_F32};
  CHECK(rnnjit_engine_create(nullptr, nullptr) == RNNJIT_INVALID_ARGUMENT);
  CHECK_THAT(rnnjit_last_error(), Catch::Contains("engine is null"));
  CHECK(rnnjit_step(nullptr, &p, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr) ==
        RNNJIT_INVALID_ARGUMENT);
  CHECK(rnnjit_sequence(nullptr, &p, 4, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr,
                        nullptr) == RNNJIT_INVALID_ARGUMENT);
  CHECK_THAT(rnnjit_last_error(), Catch::Contains("engine is null"));
  CHECK(rnnjit_tune(nullptr, &p, 0) == RNNJIT_INVALID_ARGUMENT);
  CHECK(rnnjit_tune_sequence(nullptr, &p, 64, 0) == RNNJIT_INVALID_ARGUMENT);
  CHECK_THAT(rnnjit_last_error(), Catch::Contains("engine is null"));
  CHECK(rnnjit_cell_step(nullptr, nullptr, nullptr, nullptr) == RNNJIT_INVALID_ARGUMENT);
  CHECK(rnnjit_cell_sequence(nullptr, 4, nullptr, nullptr, nullptr, nullptr) == RNNJIT_INVALID_ARGUMENT);
  CHECK_THAT(rnnjit_last_error(), Catch::Contains("cell is null"));
  CHECK(rnnjit_cell_reset(nullptr, nullptr, nullptr) == RNNJIT_INVALID_ARGUMENT);
  CHECK(rnnjit_cell_hidden(nullptr) == nullptr);
  rnnjit_engine_destroy(nullptr);
  rnnjit_cell_destroy(nullptr);
}

TEST_CASE("the C API rejects a bad log level before touching the driver", "[api]") {
  rnnjit_engine_options o{};
  o.log_level = 9;
  rnnjit_engine* engine = nullptr;
  CHECK(rnnjit_engine_create(&o, &engine) == RNNJIT_INVALID_ARGUMENT);
  CHECK_THAT(rnnjit_last_error(), Catch::Contains("log_level 9"));
}

TEST_CASE("precision names round-trip and unknown ones are rejected", "[api]") {
  for (auto p : {rnnjit::Precision::FP32, rnnjit::Precision::TF32, rnnjit::Precision::BF16})
    CHECK(rnnjit::parse_precision(rnnjit::precision_name(p)) == p);
  CHECK_THROWS_AS(rnnjit::parse_precision("fp16"), rnnjit::Error);
  CHECK(std::strcmp(rnnjit_version(), rnnjit::version().c_str()) == 0);
}

// The bounds README states, one definition for the tests, the tools and callers; no driver needed.
TEST_CASE("each precision's error bound, and none for Default", "[api]") {
  CHECK(rnnjit::error_bound(rnnjit::Precision::FP32) == 1e-5);
  CHECK(rnnjit::error_bound(rnnjit::Precision::TF32) == 2e-3);
  CHECK(rnnjit::error_bound(rnnjit::Precision::BF16) == 1e-2);
  CHECK_THROWS_MATCHES(rnnjit::error_bound(rnnjit::Precision::Default), rnnjit::Error,
                       Catch::Matchers::Predicate<rnnjit::Error>(
                           [](const rnnjit::Error& e) { return e.code() == rnnjit::ErrorCode::InvalidArgument; }));
  const std::pair<rnnjit_precision, double> bounds[] = {
      {RNNJIT_PRECISION_FP32, 1e-5}, {RNNJIT_PRECISION_TF32, 2e-3}, {RNNJIT_PRECISION_BF16, 1e-2}};
  for (const auto& [p, expected] : bounds) {
    double bound = 0;
    CHECK(rnnjit_error_bound(p, &bound) == RNNJIT_OK);
    CHECK(bound == expected);
  }
  double bound = -1;
  CHECK(rnnjit_error_bound(RNNJIT_PRECISION_DEFAULT, &bound) == RNNJIT_INVALID_ARGUMENT);
  CHECK_THAT(rnnjit_last_error(), Catch::Contains("no error bound of its own"));
  CHECK(std::isnan(bound));
  CHECK(rnnjit_error_bound(static_cast<rnnjit_precision>(7), &bound) == RNNJIT_INVALID_ARGUMENT);
  CHECK(rnnjit_error_bound(RNNJIT_PRECISION_TF32, nullptr) == RNNJIT_INVALID_ARGUMENT);
}

TEST_CASE("the C API clears its out-parameters when it fails", "[api]") {
  const rnnjit_problem p{8, 16, 16, 8, RNNJIT_PRECISION_TF32, RNNJIT_DTYPE_F32};
  rnnjit_cell* cell = reinterpret_cast<rnnjit_cell*>(0x1);
  CHECK(rnnjit_cell_create(nullptr, &p, nullptr, nullptr, nullptr, nullptr, &cell) == RNNJIT_INVALID_ARGUMENT);
  CHECK(cell == nullptr);
  CHECK_THAT(rnnjit_last_error(), Catch::Contains("engine is null"));
  rnnjit_engine_options o{};
  o.log_level = -1;
  rnnjit_engine* engine = reinterpret_cast<rnnjit_engine*>(0x1);
  CHECK(rnnjit_engine_create(&o, &engine) == RNNJIT_INVALID_ARGUMENT);
  CHECK(engine == nullptr);
}

TEST_CASE("the C API rejects a tuning mode it does not know before touching the driver", "[api]") {
  rnnjit_engine_options o{};
  o.tuning = static_cast<rnnjit_tuning>(7);
  rnnjit_engine* engine = reinterpret_cast<rnnjit_engine*>(0x1);
  CHECK(rnnjit_engine_create(&o, &engine) == RNNJIT_INVALID_ARGUMENT);
  CHECK(engine == nullptr);
  CHECK_THAT(rnnjit_last_error(), Catch::Contains("tuning 7 is not a rnnjit_tuning"));
  // Known modes and a system cache get as far as the driver.
  o.tuning = RNNJIT_TUNING_BACKGROUND;
  o.system_cache_path = "off";
  CHECK(rnnjit_engine_create(&o, &engine) == RNNJIT_NO_DRIVER);
  rnnjit::EngineOptions options;
  options.tuning = rnnjit::TuningMode::Background;
  options.system_cache_path = "off";
  try {
    rnnjit::Engine made(options);
    FAIL("an engine was made without a driver");
  } catch (const rnnjit::Error& e) {
    CHECK(e.code() == rnnjit::ErrorCode::NoDriver);
  }
}

TEST_CASE("rnnjit_engine_plan rejects a null engine and clears its out-parameters", "[api]") {
  const rnnjit_problem p{8, 16, 16, 8, RNNJIT_PRECISION_TF32, RNNJIT_DTYPE_F32};
  rnnjit_plan_state state = RNNJIT_PLAN_TUNED;
  const char* config = "stale";
  CHECK(rnnjit_engine_plan(nullptr, &p, &state, &config) == RNNJIT_INVALID_ARGUMENT);
  CHECK(state == RNNJIT_PLAN_NONE);
  CHECK(config == nullptr);
  CHECK_THAT(rnnjit_last_error(), Catch::Contains("engine is null"));
}
