// A plain HTTP/1.0 GET, enough to read a Prometheus /metrics page (the
// agent's metrics port) without an HTTP library.
#ifndef ESB_CLIENT_HTTP_GET_H_
#define ESB_CLIENT_HTTP_GET_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace esb::client {

// The body of http://`host_port``path` ("HOST:PORT", "/metrics"), read to
// the end within `timeout`. UNAVAILABLE naming the address when nothing
// listens there; DEADLINE_EXCEEDED past the timeout; UNKNOWN with the
// status line for a status other than 200; RESOURCE_EXHAUSTED past
// `max_bytes`; INVALID_ARGUMENT for an address that is not HOST:PORT.
absl::StatusOr<std::string> HttpGet(const std::string& host_port,
                                    const std::string& path,
                                    absl::Duration timeout = absl::Seconds(5),
                                    int64_t max_bytes = int64_t{64} << 20);

// Splits "HOST:PORT" ("[::1]:80" for IPv6). INVALID_ARGUMENT naming the
// text unless the port is 1..65535 and the host is not empty.
absl::Status SplitHostPort(const std::string& host_port, std::string* host,
                           int* port);

}  // namespace esb::client

#endif  // ESB_CLIENT_HTTP_GET_H_
