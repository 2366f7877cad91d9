#include "client/http_get.h"

#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"

namespace esb::client {
namespace {

// Closes a descriptor when it goes out of scope.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Waits for `events` on `fd` until `deadline`; false at the deadline.
bool WaitFor(int fd, short events, absl::Time deadline) {  // NOLINT
  while (true) {
    const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (ms <= 0) return false;
    pollfd p{fd, events, 0};
    const int n = poll(&p, 1, static_cast<int>(std::min<int64_t>(ms, 1000)));
    if (n > 0) return true;
    if (n < 0 && errno != EINTR) return true;  // The next call says why.
  }
}

}  // namespace

absl::Status SplitHostPort(const std::string& host_port, std::string* host,
                           int* port) {
  const size_t colon = host_port.rfind(':');
  auto bad = [&] {
    return absl::InvalidArgumentError(
        absl::StrCat("'", host_port, "' is not HOST:PORT"));
  };
  if (colon == std::string::npos || colon == 0) return bad();
  absl::string_view h = absl::string_view(host_port).substr(0, colon);
  if (absl::StartsWith(h, "[") && absl::EndsWith(h, "]")) {
    h = h.substr(1, h.size() - 2);
  }
  if (h.empty()) return bad();
  int p = 0;
  if (!absl::SimpleAtoi(absl::string_view(host_port).substr(colon + 1), &p) ||
      p < 1 || p > 65535) {
    return bad();
  }
  *host = std::string{h};
  *port = p;
  return absl::OkStatus();
}

absl::StatusOr<std::string> HttpGet(const std::string& host_port,
                                    const std::string& path,
                                    absl::Duration timeout, int64_t max_bytes) {
  std::string host;
  int port = 0;
  if (absl::Status s = SplitHostPort(host_port, &host, &port); !s.ok()) {
    return s;
  }
  const absl::Time deadline = absl::Now() + timeout;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string service = absl::StrCat(port);
  if (const int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
      rc != 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot resolve ", host, ": ", gai_strerror(rc)));
  }
  std::string connect_error = "no address";
  int fd = -1;
  for (addrinfo* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    const int s =
        socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK, a->ai_protocol);
    if (s < 0) continue;
    int rc = connect(s, a->ai_addr, a->ai_addrlen);
    if (rc < 0 && errno == EINPROGRESS) {
      if (!WaitFor(s, POLLOUT, deadline)) {
        close(s);
        freeaddrinfo(found);
        return absl::DeadlineExceededError(
            absl::StrCat("no answer from http://", host_port, path));
      }
      int error = 0;
      socklen_t len = sizeof(error);
      getsockopt(s, SOL_SOCKET, SO_ERROR, &error, &len);
      rc = error == 0 ? 0 : -1;
      errno = error;
    }
    if (rc == 0) {
      fd = s;
    } else {
      connect_error = std::strerror(errno);
      close(s);
    }
  }
  freeaddrinfo(found);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat(
        "nothing serves http://", host_port, path, ": ", connect_error));
  }
  Fd socket_fd(fd);
  const std::string request =
      absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: ", host_port, "\r\n\r\n");
  for (size_t sent = 0; sent < request.size();) {
    if (!WaitFor(fd, POLLOUT, deadline)) {
      return absl::DeadlineExceededError(absl::StrCat(
          "http://", host_port, path, " took the request too slowly"));
    }
    const ssize_t n =
        send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return absl::UnavailableError(
          absl::StrCat("http://", host_port, path, ": ", std::strerror(errno)));
    }
    if (n > 0) sent += static_cast<size_t>(n);
  }
  std::string reply;
  char buffer[16384];
  while (true) {
    if (!WaitFor(fd, POLLIN, deadline)) {
      return absl::DeadlineExceededError(
          absl::StrCat("http://", host_port, path, " did not answer within ",
                       absl::FormatDuration(timeout)));
    }
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return absl::UnavailableError(
          absl::StrCat("http://", host_port, path, ": ", std::strerror(errno)));
    }
    reply.append(buffer, static_cast<size_t>(n));
    if (static_cast<int64_t>(reply.size()) > max_bytes) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "http://", host_port, path, " sent more than ", max_bytes, " bytes"));
    }
  }
  const size_t line_end = reply.find("\r\n");
  const absl::string_view status_line =
      absl::string_view(reply).substr(0, line_end);
  // "HTTP/1.x 200 ..."
  const size_t space = status_line.find(' ');
  if (!absl::StartsWith(status_line, "HTTP/") ||
      space == absl::string_view::npos ||
      !absl::StartsWith(status_line.substr(space + 1), "200")) {
    return absl::UnknownError(absl::StrCat("http://", host_port, path,
                                           " answered '", status_line, "'"));
  }
  const size_t body = reply.find("\r\n\r\n");
  if (body == std::string::npos) return std::string{};
  return reply.substr(body + 4);
}

}  // namespace esb::client
