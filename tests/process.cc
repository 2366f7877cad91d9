#include "tests/process.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"

namespace esb::testing {

absl::StatusOr<std::unique_ptr<Process>> Process::Start(
    const std::vector<std::string>& argv, const std::string& log_path) {
  std::vector<char*> args;
  for (const std::string& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const int log =
      open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) return absl::InternalError("cannot open " + log_path);
  const pid_t pid = fork();
  if (pid < 0) {
    close(log);
    return absl::InternalError("fork failed");
  }
  if (pid == 0) {
    setpgid(0, 0);
    dup2(log, STDOUT_FILENO);
    dup2(log, STDERR_FILENO);
    execv(args[0], args.data());
    _exit(127);
  }
  close(log);
  setpgid(pid, pid);  // Either side may win the race; both set the same.
  return absl::WrapUnique(new Process(pid, log_path));
}

Process::~Process() {
  if (!reaped_) {
    kill(-pid_, SIGKILL);
    kill(pid_, SIGKILL);
    waitpid(pid_, &status_, 0);
  } else {
    kill(-pid_, SIGKILL);  // Whatever it left in its group.
  }
}

std::string Process::Log() const {
  std::ifstream in(log_path_);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool Process::running() {
  if (reaped_) return false;
  if (waitpid(pid_, &status_, WNOHANG) == pid_) reaped_ = true;
  return !reaped_;
}

absl::StatusOr<std::string> Process::WaitForLine(const std::string& text,
                                                 absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    const std::string log = Log();
    for (absl::string_view line : absl::StrSplit(log, '\n')) {
      if (line.find(text) != absl::string_view::npos) return std::string(line);
    }
    if (!running()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "process ", pid_, " exited before printing '", text, "':\n", log));
    }
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "no line with '", text, "' from process ", pid_, ":\n", log));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
}

void Process::Signal(int signal) {
  if (reaped_) return;
  if (signal == SIGKILL) kill(-pid_, SIGKILL);
  kill(pid_, signal);
}

absl::StatusOr<int> Process::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (running()) {
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("process ", pid_, " still runs"));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return status_;
}

RunResult RunCommand(const std::vector<std::string>& argv,
                     absl::Duration timeout) {
  static std::atomic<int> counter{0};
  const std::string log = absl::StrCat(::testing::TempDir(), "/run.", getpid(),
                                       ".", counter.fetch_add(1), ".log");
  std::filesystem::remove(log);
  RunResult result;
  absl::StatusOr<std::unique_ptr<Process>> p = Process::Start(argv, log);
  if (!p.ok()) {
    result.out = std::string(p.status().message());
    return result;
  }
  absl::StatusOr<int> status = (*p)->Wait(timeout);
  result.out = (*p)->Log();
  std::filesystem::remove(log);
  if (status.ok() && WIFEXITED(*status))
    result.exit_code = WEXITSTATUS(*status);
  if (!status.ok()) absl::StrAppend(&result.out, "\n[killed after timeout]");
  return result;
}

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    socklen_t len = sizeof(addr);
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

std::string FreshDir(const std::string& name) {
  // ctest runs each test in its own process, several at once: the test's
  // name and the pid keep their directories apart.
  const ::testing::TestInfo* test =
      ::testing::UnitTest::GetInstance()->current_test_info();
  const std::string dir =
      absl::StrCat(::testing::TempDir(), "/", name, "-",
                   test != nullptr ? test->name() : "none", "-", getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace esb::testing
