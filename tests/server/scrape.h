// Reading a registry the way Prometheus does, for the metrics tests.
#ifndef MMFUSE_TESTS_SERVER_SCRAPE_H_
#define MMFUSE_TESTS_SERVER_SCRAPE_H_

#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"

namespace mmfuse::server {

// The registry's text exposition.
inline std::string Scrape(const prometheus::Registry& registry) {
  std::ostringstream text;
  prometheus::TextSerializer().Serialize(text, registry.Collect());
  return text.str();
}

// The value of the unlabelled sample `name` in `text`; NaN when absent.
inline double Sample(const std::string& text, const std::string& name) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
    double value = 0;
    if (parts.size() == 2 && parts[0] == name && absl::SimpleAtod(parts[1], &value)) return value;
  }
  return std::numeric_limits<double>::quiet_NaN();
}

}  // namespace mmfuse::server

#endif  // MMFUSE_TESTS_SERVER_SCRAPE_H_
