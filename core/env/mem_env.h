// An Env that keeps files in memory, for tests: no disk, no leftovers, and
// the same contract as the POSIX one (missing files are NOT_FOUND, a file
// in a missing directory cannot be created, rename replaces atomically).
// Written data is visible to readers as soon as it is appended.
#ifndef ESB_CORE_ENV_MEM_ENV_H_
#define ESB_CORE_ENV_MEM_ENV_H_

#include <memory>

#include "core/env/env.h"

namespace esb {

// A new, empty in-memory file system with the root directory "/" and the
// current directory "." present. Thread-safe.
std::unique_ptr<Env> NewMemEnv();

}  // namespace esb

#endif  // ESB_CORE_ENV_MEM_ENV_H_
