// Test certificates made at test time with the `openssl` CLI: a CA, a server
// certificate for localhost / 127.0.0.1 (subjectAltName) and a client
// certificate it signed, plus a client certificate of an unrelated CA.
// Nothing secret is checked in, and nothing expires in the tree.
#ifndef MMFUSE_TESTS_RELIABILITY_TEST_CERTS_H_
#define MMFUSE_TESTS_RELIABILITY_TEST_CERTS_H_

#include <string>

#include "absl/status/statusor.h"

namespace mmfuse::testing {

struct TestCerts {
  std::string ca_cert;        // CA certificate (PEM path).
  std::string server_cert;    // Server certificate, signed by the CA.
  std::string server_key;
  std::string client_cert;    // Client certificate, signed by the CA.
  std::string client_key;
  std::string rogue_cert;     // Self-signed client certificate (another CA).
  std::string rogue_key;
};

// Writes the files under `dir` (created). INTERNAL naming the command if an
// openssl command fails (openssl missing or too old).
absl::StatusOr<TestCerts> MakeTestCerts(const std::string& dir);

}  // namespace mmfuse::testing

#endif  // MMFUSE_TESTS_RELIABILITY_TEST_CERTS_H_
