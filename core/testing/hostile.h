// Test support: hand-made hostile model and data files, each with the status
// the importer or reader must return for it. The files are built in memory
// (small: the largest is a few kilobytes); the import/reader tests parse
// them directly and the end-to-end test writes them out for esbctl.
//
// Every model takes a float input 'x' of shape [N, 1, 28, 28] (Fashion-MNIST)
// and, where it is valid, ends in a Gemm to 10 classes, so that only the
// named defect is wrong with it.
//
// Functions are thread-safe.
#ifndef ESB_CORE_TESTING_HOSTILE_H_
#define ESB_CORE_TESTING_HOSTILE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"

namespace esb::hostile {

struct HostileCase {
  std::string name;                  // Unique; also the file stem.
  std::string extension;             // ".onnx", ".idx", ".idx.gz" or ".npy".
  std::string bytes;                 // The file's content.
  absl::StatusCode code;             // What reading it must return.
  std::vector<std::string> message;  // Each must occur in the message.
};

// Hostile ONNX models, for ImportOnnxFile (written to a file: some cases
// reference external data relative to it).
std::vector<HostileCase> HostileModels();

// Hostile IDX image files, for data::ReadIdx / data::ReadImagesFor with a
// 1 x 28 x 28 geometry.
std::vector<HostileCase> HostileIdxFiles();

// Hostile .npy files, for data::ParseNpy.
std::vector<HostileCase> HostileNpyFiles();

// A valid model of the shape described above, serialized.
std::string ValidModel();

}  // namespace esb::hostile

#endif  // ESB_CORE_TESTING_HOSTILE_H_
