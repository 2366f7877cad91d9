#include "fpga_agent/uio.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <bit>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "fpga_agent/sysfs.h"

namespace esb::agent {
namespace {

uint32_t LittleEndian32(uint32_t v) {
  if constexpr (std::endian::native == std::endian::big) {
    return __builtin_bswap32(v);
  }
  return v;
}

struct MapInfo {
  uint64_t size = 0;
  uint64_t addr = 0;
};

absl::StatusOr<MapInfo> ReadMap(const std::string& uio_dir, int index) {
  const std::string dir = JoinPath(uio_dir, absl::StrCat("maps/map", index));
  MapInfo info;
  absl::StatusOr<uint64_t> size = ReadUintAttribute(JoinPath(dir, "size"));
  if (!size.ok()) return size.status();
  info.size = *size;
  absl::StatusOr<uint64_t> addr = ReadUintAttribute(JoinPath(dir, "addr"));
  if (!addr.ok()) return addr.status();
  info.addr = *addr;
  return info;
}

// Connects to the emulator's interrupt socket at `path`; -1 with errno.
int ConnectSocket(const std::string& path) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    errno = ENAMETOOLONG;
    return -1;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) !=
      0) {
    const int err = errno;
    ::close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

}  // namespace

void IoBarrier() {
#if defined(__aarch64__)
  asm volatile("dsb sy" ::: "memory");
#else
  std::atomic_thread_fence(std::memory_order_seq_cst);
#endif
}

absl::StatusOr<std::unique_ptr<Uio>> Uio::Open(const UioOptions& options) {
  const std::string class_dir = JoinPath(options.sysfs_root, "class/uio");
  absl::StatusOr<std::vector<std::string>> devices =
      ListNumbered(class_dir, "uio");
  if (!devices.ok() && !absl::IsNotFound(devices.status())) {
    return devices.status();
  }
  std::vector<std::string> seen;
  std::string found;
  for (const std::string& device :
       devices.ok() ? *devices : std::vector<std::string>{}) {
    absl::StatusOr<std::string> name =
        ReadAttribute(JoinPath(class_dir, device + "/name"));
    if (!name.ok()) continue;  // Gone since the listing, or unreadable.
    if (*name == options.name) {
      found = device;
      break;
    }
    seen.push_back(absl::StrCat(device, " '", *name, "'"));
  }
  if (found.empty()) {
    return absl::NotFoundError(absl::StrCat(
        "no UIO device named '", options.name, "' under ", class_dir,
        seen.empty()
            ? " (none there)"
            : absl::StrCat(" (found: ", absl::StrJoin(seen, ", "), ")")));
  }

  const std::string uio_dir = JoinPath(class_dir, found);
  absl::StatusOr<MapInfo> map0 = ReadMap(uio_dir, 0);
  if (!map0.ok()) return map0.status();
  absl::StatusOr<MapInfo> map1 = ReadMap(uio_dir, 1);
  if (!map1.ok()) return map1.status();
  if (map0->size < 4096) {
    return absl::FailedPreconditionError(
        absl::StrCat(uio_dir, ": map0 holds ", map0->size,
                     " bytes, fewer than the 4096 of the register interface"));
  }
  if (map1->size == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(uio_dir, ": map1 (the buffer region) is empty"));
  }

  std::unique_ptr<Uio> uio(new Uio());
  uio->device_ = found;
  uio->device_path_ = JoinPath(options.dev_root, found);
  uio->fd_ = ::open(uio->device_path_.c_str(), O_RDWR | O_SYNC | O_CLOEXEC);
  if (uio->fd_ < 0) return ErrnoStatus(errno, "open", uio->device_path_);
  struct stat st {};
  if (::fstat(uio->fd_, &st) != 0) {
    return ErrnoStatus(errno, "stat", uio->device_path_);
  }

  const auto page = static_cast<uint64_t>(::getpagesize());
  uio->map0_mapped_ = map0->size;
  void* regs = ::mmap(nullptr, map0->size, PROT_READ | PROT_WRITE, MAP_SHARED,
                      uio->fd_, 0);
  if (regs == MAP_FAILED) {
    return ErrnoStatus(errno, "mmap map0 of", uio->device_path_);
  }
  uio->map0_ = static_cast<volatile uint32_t*>(regs);
  uio->map0_size_ = map0->size;
  void* buf = ::mmap(nullptr, map1->size, PROT_READ | PROT_WRITE, MAP_SHARED,
                     uio->fd_, static_cast<off_t>(page));
  if (buf == MAP_FAILED) {
    return ErrnoStatus(errno, "mmap map1 of", uio->device_path_);
  }
  uio->map1_ = static_cast<uint8_t*>(buf);
  uio->map1_size_ = map1->size;
  uio->map1_addr_ = map1->addr;

  if (S_ISCHR(st.st_mode)) {
    uio->irq_fd_ = uio->fd_;
  } else {
    const std::string irq_path = uio->device_path_ + ".irq";
    struct stat irq {};
    if (::stat(irq_path.c_str(), &irq) == 0 && S_ISSOCK(irq.st_mode)) {
      uio->irq_fd_ = ConnectSocket(irq_path);
      if (uio->irq_fd_ < 0) return ErrnoStatus(errno, "connect to", irq_path);
    }
  }
  return uio;
}

Uio::~Uio() {
  if (map1_ != nullptr) ::munmap(map1_, map1_size_);
  if (map0_ != nullptr) {
    ::munmap(const_cast<uint32_t*>(map0_), map0_mapped_);
  }
  if (irq_fd_ >= 0 && irq_fd_ != fd_) ::close(irq_fd_);
  if (fd_ >= 0) ::close(fd_);
}

uint32_t Uio::Read32(uint32_t offset) const {
  return LittleEndian32(map0_[offset / 4]);
}

void Uio::Write32(uint32_t offset, uint32_t value) {
  map0_[offset / 4] = LittleEndian32(value);
}

absl::Status Uio::UnmaskInterrupt() {
  if (irq_fd_ < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(device_path_, " has no interrupt"));
  }
  const uint32_t one = 1;
  ssize_t n = 0;
  do {
    n = ::write(irq_fd_, &one, sizeof(one));
  } while (n < 0 && errno == EINTR);
  if (n < 0) return ErrnoStatus(errno, "unmask the interrupt of", device_path_);
  if (n != sizeof(one)) {
    return absl::DataLossError(
        absl::StrCat("short write unmasking the interrupt of ", device_path_));
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> Uio::WaitForInterrupt(absl::Duration timeout) {
  if (irq_fd_ < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(device_path_, " has no interrupt"));
  }
  const absl::Time deadline = absl::Now() + timeout;
  for (;;) {
    const absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return false;
    const double ms = std::ceil(absl::ToDoubleMilliseconds(left));
    pollfd p{irq_fd_, POLLIN, 0};
    const int ready =
        ::poll(&p, 1, ms > 1e9 ? 1000000000 : static_cast<int>(ms));
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return ErrnoStatus(errno, "poll", device_path_);
    if (ready == 0) continue;  // The deadline check above ends the wait.
    uint32_t count = 0;
    ssize_t n = 0;
    do {
      n = ::read(irq_fd_, &count, sizeof(count));
    } while (n < 0 && errno == EINTR);
    if (n < 0) return ErrnoStatus(errno, "read the interrupt of", device_path_);
    if (n == 0) {
      return absl::UnavailableError(
          absl::StrCat("the interrupt line of ", device_path_, " closed"));
    }
    if (n != sizeof(count)) {
      return absl::DataLossError(absl::StrCat(
          "read ", n, " bytes, not 4, from the interrupt of ", device_path_));
    }
    interrupt_count_ = count;
    return true;
  }
}

}  // namespace esb::agent
