// Model packages for server tests: the small architecture with seeded random
// weights (tests check serving, not accuracy).
#ifndef MMFUSE_TESTS_TESTING_TEST_PACKAGE_H_
#define MMFUSE_TESTS_TESTING_TEST_PACKAGE_H_

#include <memory>
#include <string>

#include "data/generator.h"
#include "model/inference.h"
#include "model/model_package.h"
#include "tests/testing/small_model.h"

namespace mmfuse::testing {

inline std::shared_ptr<model::ModelPackage> SmallPackage(uint64_t seed = 1) {
  model::SeedRandom(seed);
  auto package = model::NewModelPackage(SmallModelConfig(), data::GeneratedLabels());
  if (!package.ok()) return nullptr;
  (*package)->model->eval();
  return *package;
}

}  // namespace mmfuse::testing

#endif  // MMFUSE_TESTS_TESTING_TEST_PACKAGE_H_
