#include "fpga_agent/emulator.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "core/env/env.h"
#include "fpga_agent/sysfs.h"

namespace esb::agent {
namespace {

namespace fs = std::filesystem;

absl::Status MakeDirs(const std::string& dir) {
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("create ", dir, ": ", error.message()));
  }
  return absl::OkStatus();
}

// Writes `text` so readers see the old or the new contents, never a part.
absl::Status PutFile(const std::string& path, absl::string_view text) {
  const std::string tmp = path + ".emulator-tmp";
  const int fd =
      ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus(errno, "create", tmp);
  const ssize_t n = ::write(fd, text.data(), text.size());
  const int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(text.size())) {
    return ErrnoStatus(n < 0 ? err : EIO, "write", tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    return ErrnoStatus(errno, "rename to", path);
  }
  return absl::OkStatus();
}

std::string Microwatts(double watts) {
  return absl::StrCat(static_cast<int64_t>(std::llround(watts * 1e6)), "\n");
}

}  // namespace

Emulator::Emulator(EmulatorOptions options)
    : options_(std::move(options)),
      sysfs_root_(JoinPath(options_.root, "sys")),
      dev_root_(JoinPath(options_.root, "dev")),
      firmware_dir_(JoinPath(options_.root, "firmware")),
      fpga_dir_(JoinPath(sysfs_root_, "class/fpga_manager/fpga0")),
      execute_(options_.execute ? options_.execute
                                : ExecuteFunction(accel::Execute)) {}

absl::StatusOr<std::unique_ptr<Emulator>> Emulator::Start(
    EmulatorOptions options) {
  std::unique_ptr<Emulator> emulator(new Emulator(std::move(options)));
  if (absl::Status s = emulator->Build(); !s.ok()) return s;
  emulator->thread_ = std::thread([raw = emulator.get()] { raw->Loop(); });
  return emulator;
}

Emulator::~Emulator() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  for (Client& client : clients_) ::close(client.fd);
  if (listen_fd_ >= 0) ::close(listen_fd_);
  if (mapping_ != nullptr) ::munmap(mapping_, mapping_bytes_);
  if (file_fd_ >= 0) ::close(file_fd_);
}

absl::Status Emulator::Build() {
  for (const std::string& dir :
       {fpga_dir_, dev_root_, firmware_dir_, JoinPath(sysfs_root_, "class/uio"),
        JoinPath(sysfs_root_, "class/hwmon")}) {
    if (absl::Status s = MakeDirs(dir); !s.ok()) return s;
  }
  for (const auto& [file, text] :
       {std::pair<const char*, std::string>{"flags", "0\n"},
        {"firmware", ""},
        {"state", options_.fpga_state + "\n"},
        {"status", ""}}) {
    if (absl::Status s = PutFile(JoinPath(fpga_dir_, file), text); !s.ok()) {
      return s;
    }
  }

  int index = 0;
  for (const EmulatedRail& rail : options_.rails) {
    const std::string dir =
        JoinPath(sysfs_root_, absl::StrCat("class/hwmon/hwmon", index++));
    if (absl::Status s = MakeDirs(dir); !s.ok()) return s;
    if (absl::Status s = PutFile(JoinPath(dir, "name"), "ina226\n"); !s.ok()) {
      return s;
    }
    if (!rail.label.empty()) {
      const char* file = rail.power1_label ? "power1_label" : "label";
      if (absl::Status s = PutFile(JoinPath(dir, file), rail.label + "\n");
          !s.ok()) {
        return s;
      }
    }
    if (absl::Status s =
            PutFile(JoinPath(dir, "power1_input"), Microwatts(rail.watts));
        !s.ok()) {
      return s;
    }
    rail_dirs_.push_back(dir);
  }
  if (options_.temperature_c.has_value()) {
    const std::string dir =
        JoinPath(sysfs_root_, absl::StrCat("class/hwmon/hwmon", index));
    if (absl::Status s = MakeDirs(dir); !s.ok()) return s;
    if (absl::Status s = PutFile(JoinPath(dir, "name"), "ams\n"); !s.ok()) {
      return s;
    }
    const auto millidegrees =
        static_cast<int64_t>(std::llround(*options_.temperature_c * 1e3));
    if (absl::Status s = PutFile(JoinPath(dir, "temp1_input"),
                                 absl::StrCat(millidegrees, "\n"));
        !s.ok()) {
      return s;
    }
  }

  for (size_t i = 0; i < options_.other_uio_names.size(); ++i) {
    const std::string dir =
        JoinPath(sysfs_root_, absl::StrCat("class/uio/uio", i));
    if (absl::Status s = MakeDirs(dir); !s.ok()) return s;
    if (absl::Status s =
            PutFile(JoinPath(dir, "name"), options_.other_uio_names[i] + "\n");
        !s.ok()) {
      return s;
    }
  }
  if (!options_.uio_name.empty() && !options_.uio_on_load) return CreateUio();
  return absl::OkStatus();
}

absl::Status Emulator::CreateUio() {
  const std::string device =
      absl::StrCat("uio", options_.other_uio_names.size());
  const std::string dev_path = JoinPath(dev_root_, device);
  const std::string irq_path = dev_path + ".irq";
  sockaddr_un addr{};
  if (options_.interrupt && irq_path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the interrupt socket's path ", irq_path, " has ", irq_path.size(),
        " bytes, more than a Unix socket's ", sizeof(addr.sun_path) - 1));
  }

  // The device file, its registers and its interrupt exist before its
  // sysfs entry names it, so a host never finds a half-built device.
  const auto page = static_cast<uint64_t>(::getpagesize());
  mapping_bytes_ = page + options_.buffer_bytes;
  file_fd_ =
      ::open(dev_path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (file_fd_ < 0) return ErrnoStatus(errno, "create", dev_path);
  if (::ftruncate(file_fd_, static_cast<off_t>(mapping_bytes_)) != 0) {
    return ErrnoStatus(errno, "size", dev_path);
  }
  void* m = ::mmap(nullptr, mapping_bytes_, PROT_READ | PROT_WRITE, MAP_SHARED,
                   file_fd_, 0);
  if (m == MAP_FAILED) return ErrnoStatus(errno, "mmap", dev_path);
  mapping_ = static_cast<uint8_t*>(m);
  map1_ = mapping_ + page;
  Store32(accel::kRegId, options_.id);
  Store32(accel::kRegVersion, options_.version);
  Store32(accel::kRegCaps,
          accel::CapsValue(options_.config.rows, options_.config.cols,
                           options_.config.max_sb));
  Store32(accel::kRegClockKhz, options_.config.clock_khz);
  StoreStatus(0);

  if (options_.interrupt) {
    ::unlink(irq_path.c_str());
    listen_fd_ =
        ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listen_fd_ < 0) return ErrnoStatus(errno, "socket for", irq_path);
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, irq_path.c_str(), irq_path.size() + 1);
    if (::bind(listen_fd_, reinterpret_cast<const sockaddr*>(&addr),
               sizeof(addr)) != 0) {
      return ErrnoStatus(errno, "bind", irq_path);
    }
    if (::listen(listen_fd_, 8) != 0) {
      return ErrnoStatus(errno, "listen on", irq_path);
    }
  }

  const std::string dir = JoinPath(sysfs_root_, "class/uio/" + device);
  for (const auto& [map, size, address] :
       {std::tuple<const char*, uint64_t, uint64_t>{
            "map0", accel::kRegisterBytes, 0xA0000000},
        {"map1", options_.buffer_bytes, options_.buffer_address}}) {
    const std::string map_dir = JoinPath(dir, absl::StrCat("maps/", map));
    if (absl::Status s = MakeDirs(map_dir); !s.ok()) return s;
    if (absl::Status s = PutFile(JoinPath(map_dir, "size"),
                                 absl::StrFormat("0x%08x\n", size));
        !s.ok()) {
      return s;
    }
    if (absl::Status s = PutFile(JoinPath(map_dir, "addr"),
                                 absl::StrFormat("0x%016x\n", address));
        !s.ok()) {
      return s;
    }
  }
  if (absl::Status s = PutFile(JoinPath(dir, "name"), options_.uio_name + "\n");
      !s.ok()) {
    return s;
  }
  {
    absl::MutexLock lock(&mu_);
    uio_device_ = device;
  }
  uio_ready_ = true;
  return absl::OkStatus();
}

std::string Emulator::uio_device() const {
  absl::MutexLock lock(&mu_);
  return uio_device_;
}

void Emulator::StoreStatus(uint32_t value) {
  status_shadow_ = value | kStatusMark;
  Store32(accel::kRegStatus, status_shadow_);
}

uint32_t Emulator::Load32(uint32_t offset) const {
  // The registers are little-endian; so are the hosts this runs on.
  static_assert(std::endian::native == std::endian::little);
  return __atomic_load_n(reinterpret_cast<uint32_t*>(mapping_ + offset),
                         __ATOMIC_ACQUIRE);
}

void Emulator::Store32(uint32_t offset, uint32_t value) {
  __atomic_store_n(reinterpret_cast<uint32_t*>(mapping_ + offset), value,
                   __ATOMIC_RELEASE);
}

void Emulator::Loop() {
  const auto tick_ns = absl::ToInt64Nanoseconds(options_.tick);
  const timespec tick{static_cast<time_t>(tick_ns / 1000000000),
                      static_cast<long>(tick_ns % 1000000000)};  // NOLINT
  while (!stop_) {
    std::vector<pollfd> fds;
    if (listen_fd_ >= 0) fds.push_back({listen_fd_, POLLIN, 0});
    for (const Client& client : clients_) fds.push_back({client.fd, POLLIN, 0});
    ::ppoll(fds.data(), fds.size(), &tick, nullptr);
    ServeInterrupts(false);
    ServeFpgaManager();
    if (uio_ready_) {
      ServeRegisters();
      ServeInterrupts(true);
    }
  }
}

void Emulator::ServeInterrupts(bool deliver) {
  if (listen_fd_ < 0) return;
  if (!deliver) {
    for (;;) {
      const int fd =
          ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) break;
      clients_.push_back(Client{fd, false});
    }
    for (auto it = clients_.begin(); it != clients_.end();) {
      bool closed = false;
      for (;;) {
        uint32_t word = 0;
        const ssize_t n = ::recv(it->fd, &word, sizeof(word), MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
          closed = true;
          break;
        }
        if (n < 0) break;
        if (n == sizeof(word) && word == 1) it->unmasked = true;
      }
      if (closed) {
        ::close(it->fd);
        it = clients_.erase(it);
      } else {
        ++it;
      }
    }
    return;
  }
  // The line is high while STATUS says done or error and CTRL enables it.
  const bool line =
      (Load32(accel::kRegCtrl) & accel::kCtrlInterruptEnable) &&
      (status_shadow_ & (accel::kStatusDone | accel::kStatusError));
  if (!line) return;
  for (Client& client : clients_) {
    if (!client.unmasked) continue;
    const uint32_t count = interrupt_count_ + 1;
    {
      // Counted before it is sent: a host that has it finds it counted.
      absl::MutexLock lock(&mu_);
      ++interrupts_;
    }
    if (::send(client.fd, &count, sizeof(count), MSG_DONTWAIT | MSG_NOSIGNAL) ==
        sizeof(count)) {
      interrupt_count_ = count;
      client.unmasked = false;
    } else {
      absl::MutexLock lock(&mu_);
      --interrupts_;
    }
  }
}

void Emulator::ServeFpgaManager() {
  {
    absl::MutexLock lock(&mu_);
    if (fpga_silent_) return;
  }
  absl::StatusOr<std::string> name =
      ReadAttribute(JoinPath(fpga_dir_, "firmware"));
  if (!name.ok() || name->empty()) return;
  // Take the name: the next load writes into an empty file.
  const std::string firmware = JoinPath(fpga_dir_, "firmware");
  const int fd = ::open(firmware.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd >= 0) ::close(fd);
  absl::StatusOr<std::string> flags =
      ReadAttribute(JoinPath(fpga_dir_, "flags"));

  std::string state = "operating";
  std::string status;
  {
    absl::MutexLock lock(&mu_);
    if (!fail_state_.empty()) {
      state = fail_state_;
      status = fail_status_;
    }
  }
  struct stat st {};
  if (state == "operating" &&
      (::stat(JoinPath(firmware_dir_, *name).c_str(), &st) != 0 ||
       !S_ISREG(st.st_mode))) {
    state = "firmware request error";
  }
  if (state == "operating" && options_.uio_on_load && !uio_ready_ &&
      !options_.uio_name.empty()) {
    if (absl::Status s = CreateUio(); !s.ok()) {
      std::fprintf(stderr, "emulator: %s\n", std::string{s.message()}.c_str());
      state = "write error";
      status = std::string{s.message()};
    }
  }
  {
    // Counted before the state shows: a host that sees the state finds
    // the load counted.
    absl::MutexLock lock(&mu_);
    ++loads_;
    last_firmware_ = *name;
    last_flags_ = flags.ok() ? *flags : "";
  }
  // status first: a host that sees the state reads the matching status.
  (void)PutFile(JoinPath(fpga_dir_, "status"),
                status.empty() ? "" : status + "\n");
  (void)PutFile(JoinPath(fpga_dir_, "state"), state + "\n");
}

void Emulator::ServeRegisters() {
  const uint32_t status = Load32(accel::kRegStatus);
  if (status != status_shadow_) {
    // The host wrote STATUS: write-1-to-clear on done and error.
    uint32_t next = status_shadow_;
    if (status & accel::kStatusDone) next &= ~accel::kStatusDone;
    if (status & accel::kStatusError) {
      next &= ~(accel::kStatusError | accel::kStatusErrorMask);
    }
    StoreStatus(next);
  }
  auto* ctrl_word = reinterpret_cast<uint32_t*>(mapping_ + accel::kRegCtrl);
  const uint32_t ctrl = Load32(accel::kRegCtrl);
  if (ctrl & accel::kCtrlReset) {
    busy_ = false;
    StoreStatus(0);
    Store32(accel::kRegCyclesLo, 0);
    Store32(accel::kRegCyclesHi, 0);
    Store32(accel::kRegLayersDone, 0);
    __atomic_fetch_and(ctrl_word, ~(accel::kCtrlReset | accel::kCtrlStart),
                       __ATOMIC_ACQ_REL);
    absl::MutexLock lock(&mu_);
    ++resets_;
    return;
  }
  if (!(ctrl & accel::kCtrlStart)) return;
  __atomic_fetch_and(ctrl_word, ~accel::kCtrlStart, __ATOMIC_ACQ_REL);
  const uint64_t offset =
      static_cast<uint64_t>(Load32(accel::kRegProgramLo)) |
      (static_cast<uint64_t>(Load32(accel::kRegProgramHi)) << 32);
  bool hang = false;
  {
    absl::MutexLock lock(&mu_);
    ++runs_;
    last_program_offset_ = offset;
    hang = hang_;
  }
  if (busy_) {
    // START during a run: the run goes on, the error is reported.
    StoreStatus(status_shadow_ | accel::kStatusError |
                (static_cast<uint32_t>(accel::DeviceError::kBusy)
                 << accel::kStatusErrorShift));
    return;
  }
  busy_ = true;
  StoreStatus(accel::kStatusBusy);
  if (hang) return;

  const accel::MachineRun run = execute_(
      absl::MakeSpan(map1_, options_.buffer_bytes), offset, options_.config);
  std::atomic_thread_fence(std::memory_order_seq_cst);
  const auto cycles = static_cast<uint64_t>(run.cost.cycles);
  Store32(accel::kRegCyclesLo, static_cast<uint32_t>(cycles & 0xFFFFFFFFu));
  Store32(accel::kRegCyclesHi, static_cast<uint32_t>(cycles >> 32));
  Store32(accel::kRegLayersDone, static_cast<uint32_t>(run.layers_done));
  uint32_t end = accel::kStatusDone;
  if (run.error != accel::DeviceError::kNone) {
    end |= accel::kStatusError |
           (static_cast<uint32_t>(run.error) << accel::kStatusErrorShift);
  }
  busy_ = false;
  StoreStatus(end);
}

void Emulator::FailLoads(const std::string& state, const std::string& status) {
  absl::MutexLock lock(&mu_);
  fail_state_ = state;
  fail_status_ = status;
}

void Emulator::SetFpgaSilent(bool silent) {
  absl::MutexLock lock(&mu_);
  fpga_silent_ = silent;
}

int Emulator::loads() const {
  absl::MutexLock lock(&mu_);
  return loads_;
}

std::string Emulator::last_flags() const {
  absl::MutexLock lock(&mu_);
  return last_flags_;
}

std::string Emulator::last_firmware() const {
  absl::MutexLock lock(&mu_);
  return last_firmware_;
}

void Emulator::SetHang(bool hang) {
  absl::MutexLock lock(&mu_);
  hang_ = hang;
}

int Emulator::runs() const {
  absl::MutexLock lock(&mu_);
  return runs_;
}

int Emulator::resets() const {
  absl::MutexLock lock(&mu_);
  return resets_;
}

int Emulator::interrupts() const {
  absl::MutexLock lock(&mu_);
  return interrupts_;
}

uint64_t Emulator::last_program_offset() const {
  absl::MutexLock lock(&mu_);
  return last_program_offset_;
}

absl::Status Emulator::SetRailWatts(int rail, double watts) {
  if (rail < 0 || rail >= static_cast<int>(rail_dirs_.size())) {
    return absl::InvalidArgumentError(absl::StrCat("no rail ", rail));
  }
  return PutFile(JoinPath(rail_dirs_[rail], "power1_input"), Microwatts(watts));
}

absl::Status Emulator::RemoveRail(int rail) {
  if (rail < 0 || rail >= static_cast<int>(rail_dirs_.size())) {
    return absl::InvalidArgumentError(absl::StrCat("no rail ", rail));
  }
  std::error_code error;
  fs::remove_all(rail_dirs_[rail], error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("remove ", rail_dirs_[rail], ": ", error.message()));
  }
  return absl::OkStatus();
}

namespace {

std::string EmulatorRootsDir() {
  const char* tmp = std::getenv("TEST_TMPDIR");
  return JoinPath(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp",
                  absl::StrCat("esb-zcu102.", ::getpid()));
}

}  // namespace

absl::StatusOr<std::string> FreshEmulatorRoot(const std::string& name) {
  static std::atomic<int> next{0};
  std::string part = name.substr(0, 40);
  for (char& c : part) {
    if (c == '/') c = '_';
  }
  const std::string dir =
      JoinPath(EmulatorRootsDir(), absl::StrCat(next++, "-", part));
  std::error_code error;
  fs::remove_all(dir, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("remove ", dir, ": ", error.message()));
  }
  if (absl::Status s = MakeDirs(dir); !s.ok()) return s;
  return dir;
}

absl::StatusOr<std::string> FreshEmulatorRootWithBitstream(
    const std::string& name, const std::string& bitstream,
    const std::string& bytes) {
  absl::StatusOr<std::string> root = FreshEmulatorRoot(name);
  if (!root.ok()) return root.status();
  const std::string dir = JoinPath(*root, "bitstreams");
  if (absl::Status s = MakeDirs(dir); !s.ok()) return s;
  if (absl::Status s =
          WriteFileAtomically(Env::Default(), JoinPath(dir, bitstream), bytes);
      !s.ok()) {
    return s;
  }
  return root;
}

void RemoveEmulatorRoots() {
  std::error_code error;
  fs::remove_all(EmulatorRootsDir(), error);
}

}  // namespace esb::agent
